/**
 * lstat without garbage: a backup lstats every file, and fs.lstatSync with nanosecond times
 * (bigint: true) allocated ~2.7 KB a call, most of what kept the collector busy under a pod's small
 * young generation. The addon writes the fields into one reused array instead.
 */
import { fstatSync, lstatSync, type BigIntStats } from 'node:fs';
import { native } from './addon.js';
import { describeFd, SystemError } from './errors.js';

/** What a backup needs of an lstat: numbers where they fit, nanosecond times and inode/device as decimal strings. */
export interface Lstat {
  /** The whole st_mode: file type and permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  mtime: string;
  ctime: string;
  ino: string;
  dev: string;
}

const FIELDS = 14;
const out = new Float64Array(FIELDS);

/** Nanoseconds since the epoch as a decimal string, from seconds and nanoseconds. */
function ns(sec: number, nsec: number): string {
  if (sec >= 0) return sec === 0 ? String(nsec) : `${sec}${String(nsec).padStart(9, '0')}`;
  return (BigInt(sec) * 1_000_000_000n + BigInt(nsec)).toString();
}

/** A 64-bit number from its 32-bit halves, as a decimal string. */
function u64(hi: number, lo: number): string {
  return hi === 0 ? String(lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

function fromBigInt(s: BigIntStats): Lstat {
  return {
    mode: Number(s.mode),
    nlink: Number(s.nlink),
    uid: Number(s.uid),
    gid: Number(s.gid),
    size: Number(s.size),
    blocks: Number(s.blocks),
    mtime: s.mtimeNs.toString(),
    ctime: s.ctimeNs.toString(),
    ino: s.ino.toString(),
    dev: s.dev.toString(),
  };
}

function fromOut(): Lstat {
  return {
    mode: out[0]!,
    nlink: out[1]!,
    uid: out[2]!,
    gid: out[3]!,
    size: out[4]!,
    blocks: out[5]!,
    mtime: ns(out[6]!, out[7]!),
    ctime: ns(out[8]!, out[9]!),
    ino: u64(out[10]!, out[11]!),
    dev: u64(out[12]!, out[13]!),
  };
}

/** lstat a path (never following a symlink); throws Node-style errors (code, syscall, path). */
export function lstatPath(path: Buffer): Lstat {
  if (!native) return fromBigInt(lstatSync(path, { bigint: true }));
  const rc = native.statInto(path, out);
  if (rc < 0) throw new SystemError(native, -rc, 'lstat', path.toString());
  return fromOut();
}

/** fstat an open file. */
export function fstatFd(fd: number): Lstat {
  if (!native) return fromBigInt(fstatSync(fd, { bigint: true }));
  const rc = native.statInto(fd, out);
  if (rc < 0) throw new SystemError(native, -rc, 'fstat', describeFd(fd));
  return fromOut();
}
