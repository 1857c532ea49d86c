import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as openpgp from 'openpgp';
import { runBackup } from '../../src/backup/backup.js';
import { generateKeyPair } from '../../src/crypto/keys.js';
import type { Credentials } from '../../src/repo/credentials.js';
import { initRepository, openRepository, type Access } from '../../src/repo/keyring.js';
import type { Repository } from '../../src/repo/repository.js';
import type { Snapshot } from '../../src/repo/snapshot.js';
import { FilesystemTarget } from '../../src/targets/filesystem/filesystem.js';

/**
 * A repository built in this process with the project's own code (keys, init, backup), for the tests
 * that check one module's refusals directly: they import src/, so they test the code as it is without a
 * build, and StrykerJS can run them against every mutant (scripts/mutation.sh). What users run is
 * tested through the CLI elsewhere.
 */
export interface LocalRepo {
  dir: string;
  /** The repository folder. */
  repo: string;
  target: FilesystemTarget;
  /** The owner's unlocked private key: a recipient, and the repository is signed by it. */
  key: openpgp.PrivateKey;
  credentials: Credentials;
  /** The snapshot of `files` the first backup wrote. */
  snapshot: Snapshot;
  /** Open the repository again with what a caller holds (default: the owner's key). */
  open(access?: Access): Promise<Repository>;
  cleanup(): Promise<void>;
}

/** An unlocked v6 key pair made by the project's own keygen. */
export async function makeKey(name: string): Promise<{ privateKey: openpgp.PrivateKey; armoredPublic: string }> {
  const pair = await generateKeyPair(name);
  return { privateKey: await openpgp.readPrivateKey({ armoredKey: pair.privateKey }), armoredPublic: pair.publicKey };
}

/** Write `files` (relative path → content) below `root`. */
export async function writeFiles(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** keygen + init (signed by the owner) + one backup of `files`, with fixed 256 KiB chunks and 64 KiB small files. */
export async function makeLocalRepo(files: Record<string, string | Buffer>): Promise<LocalRepo> {
  const dir = await mkdtemp(join(tmpdir(), 'kbrackup-local-'));
  const repo = join(dir, 'repo');
  const target = new FilesystemTarget(repo);
  const { privateKey } = await makeKey('owner');
  const { credentials } = await initRepository(target, {
    recipients: [],
    signer: privateKey,
    passphrase: undefined,
    chunker: { algorithm: 'fixed', size: 256 * 1024 },
    packSize: 16 * 1024 * 1024,
    smallFile: 64 * 1024,
    bundleSize: 256 * 1024,
  });
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFiles(src, files);
  const open = (access: Access = { privateKey }) => openRepository(target, access);
  const temp = join(dir, 'tmp');
  await mkdir(temp);
  const warnings: string[] = [];
  const { snapshot } = await runBackup(
    await open({ credentials: credentials! }),
    { root: src, source: 'src', hostname: 'test', username: 'test', tags: [], excludes: [], tempDir: temp, tempLimit: 0, workers: 1, chunkThread: 'inline', uploads: 1, programVersion: 'test', force: false, signal: new AbortController().signal },
    { error: (path, _during, err) => warnings.push(`${path}: ${String(err)}`), warn: (path, message) => warnings.push(`${path}: ${message}`) },
  );
  if (warnings.length) throw new Error(`the fixture's backup warned: ${warnings.join('; ')}`);
  return { dir, repo, target, key: privateKey, credentials: credentials!, snapshot, open, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
