import { getXattr, listXattrs, withPath, xattrSupported } from '../platform/index.js';
import { toBytes, type ByteString } from '../repo/tree/names.js';

/** Errors that mean "no attributes here", not a problem: the file system has none, or one vanished. */
const NONE = new Set(['ENOTSUP', 'ENODATA']);

/**
 * A path's extended attributes (never a symlink's target's), sorted by name; undefined when it has none.
 * All namespaces readable by this process are kept; restore decides which it may write back.
 */
export function readXattrs(path: ByteString): [Buffer, Buffer][] | undefined {
  if (!xattrSupported()) return undefined;
  return withPath(toBytes(path), readAll);
}

function readAll(bytes: Buffer): [Buffer, Buffer][] | undefined {
  let names: Buffer[];
  try {
    names = listXattrs(bytes);
  } catch (err) {
    if (NONE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const out: [Buffer, Buffer][] = [];
  for (const name of names.sort(Buffer.compare)) {
    try {
      out.push([name, getXattr(bytes, name)]);
    } catch (err) {
      if (!NONE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return out.length > 0 ? out : undefined;
}
