import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type RunResult } from './cli.js';

/** A scratch folder with a key pair and an initialised filesystem repository. */
export interface Fixture {
  dir: string;
  repo: string;
  pub: string;
  key: string;
  cred: string;
  cleanup(): Promise<void>;
}

/** Fail with the CLI's output when it did not exit as expected. */
export function expectCode(result: RunResult, code: number): RunResult {
  if (result.code !== code) throw new Error(`expected exit ${code}, got ${result.code} (${result.signal ?? ''})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** keygen + init in a fresh temp folder. */
export async function makeFixture(initArgs: string[] = []): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'kbrackup-test-'));
  const repo = join(dir, 'repo');
  const owner = join(dir, 'keys', 'owner');
  expectCode(await runCli(['keygen', '--out', owner]), 0);
  const cred = join(dir, 'backup.cred');
  expectCode(await runCli(['init', '--repo', repo, '--key', `${owner}.key.asc`, '--credentials-out', cred, ...initArgs]), 0);
  return { dir, repo, pub: `${owner}.pub.asc`, key: `${owner}.key.asc`, cred, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
