import { readAllXattrs, withPath } from '../platform/index.js';
import { toBytes, type ByteString } from '../repo/tree/names.js';

/**
 * A path's extended attributes (never a symlink's target's), sorted by name; undefined when it has none.
 * All namespaces readable by this process are kept; restore decides which it may write back.
 */
export function readXattrs(path: ByteString): [Buffer, Buffer][] | undefined {
  return withPath(toBytes(path), readAllXattrs);
}
