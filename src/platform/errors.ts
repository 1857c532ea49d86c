import { readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { KbrackupError } from '../errors.js';
import type { Native } from './addon.js';

/** A failed system call, shaped like Node's fs errors (code, errno, syscall, path), so callers handle both alike. */
export class SystemError extends Error implements NodeJS.ErrnoException {
  readonly code: string;
  /** Negative, as in Node's own errors. */
  readonly errno: number;
  readonly syscall: string;
  /** The file as text; undecodable bytes of a Buffer path become U+FFFD, as in Node's messages. */
  readonly path: string;

  /** `errno` is positive, as the C library has it; `detail` follows the path in the message. */
  constructor(native: Native, errno: number, syscall: string, path: string, detail = '') {
    const code = errnoName(errno);
    const text = native.strerror(errno);
    super(`${code}: ${text.charAt(0).toLowerCase()}${text.slice(1)}, ${syscall} '${path}'${detail && ` ${detail}`}`);
    this.name = 'SystemError';
    this.code = code;
    this.errno = -errno;
    this.syscall = syscall;
    this.path = path;
  }
}

/** The native addon is not in this build or did not load: the call cannot be made at all. */
export class NativeUnavailableError extends KbrackupError {
  readonly code = 'ERR_KBRACKUP_NO_ADDON';
  constructor(what: string, reason: string) {
    super(`${what} not available in this build: ${reason}`);
  }
}

const uvNames = getSystemErrorMap();
const osNames = new Map(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** Node's name for an errno (so ENOTSUP, not its alias EOPNOTSUPP), or the kernel's where libuv has none (EDQUOT). */
function errnoName(errno: number): string {
  return uvNames.get(-errno)?.[0] ?? osNames.get(errno) ?? `errno ${errno}`;
}

/** The path of an open file for an error message: /proc knows it, else only the descriptor is known. */
export function describeFd(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `fd ${fd}`;
  }
}

/** A path or attribute name as text for messages; bytes that are not UTF-8 become U+FFFD, as in Node's. */
export function asText(bytes: string | Buffer): string {
  return typeof bytes === 'string' ? bytes : bytes.toString('utf8');
}
