import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { getXattr, listXattrs, withPath } from '../../src/platform/index.js';

/** What one path of a folder holds, as `find` sees it (names are bytes: latin1 strings keep them exact). */
export interface PathInfo {
  type: 'f' | 'd' | 'l' | string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  ino: number;
  mtime: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  link: string;
  sha256?: string;
  /** Extended attributes as `name=value(base64)`, sorted. */
  xattrs: string[];
}

/** Files larger than this are not hashed (the 5 GiB sparse file is compared by its extents). */
const HASH_MAX = 256 * 1024 * 1024;
const FIELDS = 11;

function sha256Of(path: Buffer): string {
  const hash = createHash('sha256');
  const fd = withPath(path, (p) => openSync(p, 'r'));
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function xattrsOf(path: Buffer): string[] {
  return withPath(path, (p) => listXattrs(p).map((name) => `${name.toString('latin1')}=${getXattr(p, name).toString('base64')}`)).sort();
}

/**
 * Every path below `dir` (relative, byte strings) with its type, size, mode, owner, links, times,
 * allocation, content hash and extended attributes. GNU find lists paths of any length (it walks with
 * openat), so a restore is checked by a tool other than the one that wrote it.
 */
export function treeOf(dir: string): Map<string, PathInfo> {
  const out = execFileSync('find', [dir, '-mindepth', '1', '-printf', '%P\\0%y\\0%s\\0%m\\0%U\\0%G\\0%n\\0%i\\0%T@\\0%b\\0%l\\0'], { maxBuffer: 256 * 1024 * 1024 });
  const fields: string[] = [];
  for (let start = 0; start < out.length; ) {
    const end = out.indexOf(0, start);
    fields.push(out.subarray(start, end).toString('latin1'));
    start = end + 1;
  }
  const tree = new Map<string, PathInfo>();
  for (let i = 0; i + FIELDS <= fields.length; i += FIELDS) {
    const [path, type, size, mode, uid, gid, nlink, ino, mtime, blocks, link] = fields.slice(i, i + FIELDS) as [string, string, string, string, string, string, string, string, string, string, string];
    const absolute = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(path, 'latin1')]);
    const info: PathInfo = { type, size: Number(size), mode: parseInt(mode, 8), uid: Number(uid), gid: Number(gid), nlink: Number(nlink), ino: Number(ino), mtime: Number(mtime), blocks: Number(blocks), link, xattrs: type === 'l' ? [] : xattrsOf(absolute) };
    if (type === 'f' && info.size <= HASH_MAX) info.sha256 = sha256Of(absolute);
    tree.set(path, info);
  }
  return tree;
}

/** The chosen fields of every path, keyed by the base64 of its bytes, for deepEqual between a source and its restore. */
export function comparable(tree: Map<string, PathInfo>, keep: (keyof PathInfo)[]): Record<string, Partial<PathInfo>> {
  const out: Record<string, Partial<PathInfo>> = {};
  for (const [path, info] of [...tree].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const picked: Partial<PathInfo> = {};
    for (const key of keep) (picked as Record<string, unknown>)[key] = info[key];
    out[Buffer.from(path, 'latin1').toString('base64')] = picked;
  }
  return out;
}
