/**
 * The order the walker lists paths in, and so the order of every tree: depth-first, a folder before its
 * contents, names compared as bytes. Comparing component by component gives that order for any two paths.
 */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const c = Buffer.compare(Buffer.from(pa[i] as string), Buffer.from(pb[i] as string));
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}
