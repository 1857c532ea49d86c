import { treeOf } from './tree.js';

/**
 * Bytes of the files below `src` (or of `paths` only) that `out` does not hold exactly: a missing or
 * different file counts whole. 0 is a restore that lost nothing.
 */
export function lostBytes(src: string, out: string, paths?: string[]): number {
  const want = treeOf(src);
  const got = treeOf(out);
  let lost = 0;
  for (const [path, info] of want) {
    if (info.type !== 'f' || (paths && !paths.includes(path))) continue;
    if (got.get(path)?.sha256 !== info.sha256) lost += info.size;
  }
  return lost;
}

/**
 * What a failed restore left in `out` that it should not have: hidden temp files, and files whose
 * content is not the source's (a half-written file under its final name).
 */
export function partialFiles(src: string, out: string): string[] {
  const want = treeOf(src);
  const bad: string[] = [];
  for (const [path, info] of treeOf(out)) {
    if (info.type !== 'f') continue;
    if (path.split('/').at(-1)!.startsWith('.kbrackup-') || want.get(path)?.sha256 !== info.sha256) bad.push(path);
  }
  return bad;
}
