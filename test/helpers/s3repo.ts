import { runCli, type RunOptions, type RunResult } from './cli.js';
import { expectCode, type Fixture } from './repo.js';
import type { S3Server } from './s3server.js';

/** A repository in s3rver's bucket, reached through `endpoint` (the server itself or a proxy in front of it). */
export interface S3Repo {
  repo: string;
  /** Backup credentials written by init. */
  cred: string;
  /** Runs the CLI against the repository through `endpoint`, with s3rver's credentials. */
  cli(args: string[], options?: RunOptions): Promise<RunResult>;
}

/** Initialise `s3://kbrackup/PREFIX` for the fixture's key (signed, so restores trust it) and return how to reach it. */
export async function initS3Repo(fx: Fixture, server: S3Server, endpoint: string, prefix: string, initArgs: string[] = []): Promise<S3Repo> {
  const env = { ...process.env, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, KBRACKUP_S3_FORCE_PATH_STYLE: 'true', AWS_EC2_METADATA_DISABLED: 'true', AWS_ENDPOINT_URL: endpoint };
  const repo = `s3://kbrackup/${prefix}`;
  const cred = `${fx.dir}/${prefix}.cred`;
  const cli = (args: string[], options: RunOptions = {}): Promise<RunResult> => runCli(args, { ...options, env: { ...env, ...options.env } });
  expectCode(await cli(['init', '--repo', repo, '--key', fx.key, '--credentials-out', cred, ...initArgs]), 0);
  return { repo, cred, cli };
}
