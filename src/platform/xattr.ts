/**
 * Extended attributes of files (user.*, and security.* / system.posix_acl_* where privileged),
 * never through a symlink: a path names the link itself, as backup and restore need. Names and
 * paths are bytes (Buffers), as Linux has them; strings work too and are taken as UTF-8.
 */
import { native, requireNative, type Native } from './addon.js';
import { asText, describeFd, SystemError } from './errors.js';

/** A file's path: a Buffer for any name Linux allows (not only UTF-8), or a string. */
export type FilePath = string | Buffer;
/** An attribute's full name such as `user.comment`, as bytes or a string. */
export type XattrName = string | Buffer;

const WHAT = 'extended attributes are';

/** Whether extended attributes can be read and written in this build (the native addon loaded). */
export function xattrSupported(): boolean {
  return native !== undefined;
}

/** The names of a file's extended attributes (llistxattr); a symlink's own, never its target's. */
export function listXattrs(path: FilePath): Buffer[] {
  return list(path);
}

/** The value of one extended attribute (lgetxattr); ENODATA where the file has none of that name. */
export function getXattr(path: FilePath, name: XattrName): Buffer {
  return get(path, name);
}

/** Creates or replaces one extended attribute (lsetxattr). */
export function setXattr(path: FilePath, name: XattrName, value: Uint8Array): void {
  set(path, name, value);
}

/** The names of an open file's extended attributes (flistxattr). */
export function flistXattrs(fd: number): Buffer[] {
  return list(fd);
}

/** The value of one extended attribute of an open file (fgetxattr). */
export function fgetXattr(fd: number, name: XattrName): Buffer {
  return get(fd, name);
}

/** Creates or replaces one extended attribute of an open file (fsetxattr), e.g. restore's temp file before its rename. */
export function fsetXattr(fd: number, name: XattrName, value: Uint8Array): void {
  set(fd, name, value);
}

type Subject = number | FilePath;

/** Errors that mean "no attributes here", not a problem: the file system has none, or one vanished. */
const NONE = new Set(['ENOTSUP', 'ENODATA']);

/**
 * Every extended attribute of a path (never a symlink's target) or an open file, sorted by name;
 * undefined when it has none, the file system has none, or this build cannot read them.
 */
export function readAllXattrs(subject: Subject): [Buffer, Buffer][] | undefined {
  if (native === undefined) return undefined;
  let names: Buffer[];
  try {
    names = list(subject);
  } catch (err) {
    if (NONE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
  const out: [Buffer, Buffer][] = [];
  for (const name of names.sort(Buffer.compare)) {
    try {
      out.push([name, get(subject, name)]);
    } catch (err) {
      if (!NONE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return out.length > 0 ? out : undefined;
}

function list(subject: Subject): Buffer[] {
  const n = requireNative(WHAT);
  const raw = n.listxattr(subject);
  if (typeof raw === 'number') fail(n, raw, 'listxattr', subject);
  const names: Buffer[] = [];
  // The kernel ends every name with a NUL; a list cut short still ends the loop.
  for (let start = 0; start < raw.length; ) {
    const end = raw.indexOf(0, start);
    const stop = end < 0 ? raw.length : end;
    names.push(raw.subarray(start, stop));
    start = stop + 1;
  }
  return names;
}

function get(subject: Subject, name: XattrName): Buffer {
  const n = requireNative(WHAT);
  const value = n.getxattr(subject, name);
  if (typeof value === 'number') fail(n, value, 'getxattr', subject, name);
  return value;
}

function set(subject: Subject, name: XattrName, value: Uint8Array): void {
  const n = requireNative(WHAT);
  const rc = n.setxattr(subject, name, value);
  if (rc < 0) fail(n, rc, 'setxattr', subject, name);
}

/** Throws the Node-style error for a negative errno, naming the call as the C library does (l… for paths, f… for fds). */
function fail(n: Native, negativeErrno: number, call: string, subject: Subject, name?: XattrName): never {
  const byFd = typeof subject === 'number';
  const where = byFd ? describeFd(subject) : asText(subject);
  throw new SystemError(n, -negativeErrno, `${byFd ? 'f' : 'l'}${call}`, where, name === undefined ? '' : `(${asText(name)})`);
}
