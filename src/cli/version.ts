import { createRequire } from 'node:module';

/** `kbrackup x.y.z`, as recorded in snapshots (restic's program_version). */
export const PROGRAM_VERSION = `kbrackup ${(createRequire(import.meta.url)('../../package.json') as { version: string }).version}`;
