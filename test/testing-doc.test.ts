import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * docs/TESTING.md maps every claim to the tests that guard it: a renamed or deleted test must not
 * leave the table pointing at nothing. Each `suite › "title"` it quotes has to start a real title.
 */
const ROOT = join(import.meta.dirname, '..');
const TESTS = join(ROOT, 'test');

/** Stands for a template literal's `${...}` in a title: it matches any text. */
const ANY = '\0';

/** The titles of describe/it/test calls in a file, backticks dropped. */
function titles(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of source.matchAll(/\b(?:describe|it|test)\(\s*(?:'((?:[^'\\]|\\.)*)'|`((?:[^`\\]|\\.)*)`|"((?:[^"\\]|\\.)*)")/g)) {
    const raw = m[1] ?? m[3] ?? m[2]!.replace(/\$\{[^}]*\}/g, ANY);
    out.push(raw.replace(/\\(.)/g, '$1').replace(/`/g, ''));
  }
  return out;
}

/** Whether `name` is `title` (or, with `prefix`, its beginning), where ANY in the title matches any run of text. */
function matches(name: string, title: string, prefix: boolean, i = 0, j = 0): boolean {
  if (i === name.length) return prefix || title.slice(j).split('').every((c) => c === ANY);
  if (j === title.length) return false;
  if (title[j] === ANY) return matches(name, title, prefix, i, j + 1) || matches(name, title, prefix, i + 1, j);
  return title[j] === name[i] && matches(name, title, prefix, i + 1, j + 1);
}

describe('docs/TESTING.md', () => {
  it('every test it names exists, in the suite it names', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'TESTING.md'), 'utf8');
    const suites = new Set(readdirSync(TESTS).filter((f) => f.endsWith('.test.ts')).map((f) => f.slice(0, -'.test.ts'.length)));
    const rows = doc.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| claim') && !l.startsWith('| command'));
    let checked = 0;
    const missing: string[] = [];
    for (const row of rows) {
      const cells = row.split(/(?<!\\)\|/);
      const tests = cells[cells.length - 2] ?? '';
      // "suite › "a", "b"; other › "c"": each suite's quotes run up to the next suite name.
      for (const group of tests.matchAll(/([a-z][a-z0-9.-]*) ›((?:[^›]|›(?= "))*?)(?=(?:[;,(]\s*)?[a-z][a-z0-9.-]* ›|$)/g)) {
        const suite = group[1]!;
        if (!suites.has(suite)) {
          missing.push(`${suite} (no test/${suite}.test.ts)`);
          continue;
        }
        const known = titles(join(TESTS, `${suite}.test.ts`));
        for (const q of group[2]!.matchAll(/"([^"]+)"/g)) {
          // A quote ending in an ellipsis is a title's beginning.
          const prefix = q[1]!.includes('…');
          const name = q[1]!.split('…')[0]!.trimEnd().replace(/\\\|/g, '|').replace(/`/g, '');
          checked++;
          if (!known.some((t) => matches(name, t, prefix))) missing.push(`${suite} › "${name}"`);
        }
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(checked > 150, `only ${checked} quoted tests found: the table's format changed?`);
  });
});
