import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { comparePaths } from '../src/backup/tree-order.js';

/** The definition: component by component, each compared as UTF-8 bytes, a prefix first. */
function reference(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = Buffer.compare(Buffer.from(pa[i] as string), Buffer.from(pb[i] as string));
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

describe('tree order', () => {
  it('matches the component-wise UTF-8 byte order on random paths', () => {
    const alphabet = ['a', 'b', 'A', '.', '-', ' ', 'é', '€', '\uffef', '😀', '𝄞', '/'];
    let seed = 12345;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const path = () => {
      let s = alphabet[rand(alphabet.length - 1)] as string;
      for (let i = rand(6); i > 0; i--) s += alphabet[rand(alphabet.length)];
      return s.replace(/\/+/g, '/').replace(/\/$/, 'x');
    };
    for (let i = 0; i < 20000; i++) {
      const [a, b] = [path(), path()];
      assert.equal(Math.sign(comparePaths(a, b)), Math.sign(reference(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });

  it('puts a folder before its contents and its contents before later siblings', () => {
    const sorted = ['a', 'a/b', 'a/b/c', 'a/z', 'a.txt', 'ab', 'b'];
    assert.deepEqual([...sorted].reverse().sort(comparePaths), sorted);
  });
});
