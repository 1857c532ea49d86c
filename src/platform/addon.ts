/**
 * Loads the Node-API addon built from platform.c (see binding.gyp), once, at import. A missing or
 * unloadable addon is not an error here: callers check `native` and degrade (sparse files are read
 * in full), or get a NativeUnavailableError from `requireNative`; `addonUnavailableReason` says why.
 */
import { createRequire } from 'node:module';
import { NativeUnavailableError } from './errors.js';

/** The addon's calls; system errors come back as a negative errno, never thrown. */
export interface Native {
  lseek(fd: number, offset: number, whence: number): number;
  statInto(subject: number | string | Buffer, out: Float64Array): number;
  getxattr(subject: number | string | Buffer, name: string | Buffer): Buffer | number;
  listxattr(subject: number | string | Buffer): Buffer | number;
  setxattr(subject: number | string | Buffer, name: string | Buffer, value: Uint8Array): number;
  strerror(errno: number): string;
  startWriteback(fd: number, offset: number, length: number): number;
  mmapThreshold(bytes: number): number;
  readonly SEEK_DATA: number;
  readonly SEEK_HOLE: number;
}

/** Set only by the test that proves the fallback, so one build can run both ways. */
const DISABLE_ENV = 'KBRACKUP_TEST_NO_ADDON';
// `npm run build` copies the addon into dist/platform/; this path reaches it from src/platform/ (tsx) and dist/platform/ alike.
const ADDON_PATH = '../../dist/platform/kbrackup_platform.node';

function load(): { native: Native } | { native: undefined; reason: string } {
  if (process.env[DISABLE_ENV]) return { native: undefined, reason: `disabled by ${DISABLE_ENV}` };
  try {
    return { native: createRequire(import.meta.url)(ADDON_PATH) as Native };
  } catch (err) {
    return { native: undefined, reason: `the native addon did not load (${(err as Error).message.split('\n')[0]})` };
  }
}

const loaded = load();
/** The addon, or undefined where it is absent or did not load. */
export const native: Native | undefined = loaded.native;
/** Why the addon is not there, for one log line; undefined when it loaded. */
export const addonUnavailableReason: string | undefined = loaded.native ? undefined : loaded.reason;

/** The addon for a call that cannot be made without it; `what` names the capability in the error. */
export function requireNative(what: string): Native {
  if (loaded.native) return loaded.native;
  throw new NativeUnavailableError(what, loaded.reason);
}
