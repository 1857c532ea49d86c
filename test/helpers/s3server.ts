import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild, waitForLine } from './process.js';

/** A running s3rver: path-style endpoint, its fixed credentials and the buckets it was started with. */
export interface S3Server {
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where s3rver keeps the buckets on disk. */
  directory: string;
  stop(): Promise<void>;
}

/** Starts s3rver in a child process on 127.0.0.1 (random port) with a temp directory and the given buckets. */
export async function startS3Server(buckets: string[] = ['kbrackup']): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'kbrackup-s3rver-'));
  const main = fileURLToPath(new URL('./s3rver-main.cjs', import.meta.url));
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
  const child = spawn(process.execPath, ['--openssl-legacy-provider', main, directory, ...buckets], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.resume();
  try {
    const match = await waitForLine(child, 'stdout', /^\{"port":(\d+)\}$/, 's3rver');
    const port = Number(match[1]);
    return {
      endpoint: `http://127.0.0.1:${port}`,
      port,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      directory,
      async stop() {
        await stopChild(child);
        await rm(directory, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopChild(child);
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
}
