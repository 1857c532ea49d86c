/**
 * The order the walker lists paths in, and so the order of every tree: depth-first, a folder before its
 * contents, names compared as bytes. Comparing component by component gives that order for any two paths.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A separator ends a component: the shorter component (a folder) sorts first.
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    // UTF-16 order matches UTF-8 byte order below the surrogates; past them compare bytes.
    if (x < 0xd800 && y < 0xd800) return x - y;
    return Buffer.compare(Buffer.from(a.slice(i)), Buffer.from(b.slice(i)));
  }
  return a.length - b.length;
}
