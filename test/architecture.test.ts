import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/**
 * What each layer of src/ may import (docs/ARCHITECTURE.md "Layers, and what each may import").
 * `errors.ts` at the root is everyone's; `cli.ts`, the entry point, imports only cli.
 */
const ALLOWED: Record<string, string[]> = {
  'cli.ts': ['cli'],
  cli: ['backup', 'restore', 'maintenance', 'repo', 'chunker', 'crypto', 'compress', 'targets', 'config', 'k8s', 'observe', 'platform', 'util'],
  backup: ['repo', 'chunker', 'crypto', 'compress', 'platform', 'util'],
  restore: ['repo', 'platform', 'util'],
  maintenance: ['repo', 'util'],
  repo: ['crypto', 'compress', 'chunker', 'targets', 'util'],
  chunker: ['platform', 'util'],
  crypto: ['util'],
  compress: ['util'],
  targets: ['util'],
  config: ['util'],
  // Events carry the same run report as metrics do.
  k8s: ['observe', 'util'],
  observe: ['util'],
  platform: [],
  util: [],
};

/** Every .ts file under a folder. */
async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The layer of a file under src/: its top folder, or the file itself at the root (`cli.ts`, `errors`). */
function layerOf(path: string): string {
  const rel = relative(SRC, path).split('/');
  if (rel.length > 1) return rel[0]!;
  return rel[0] === 'errors.ts' ? 'errors' : rel[0]!;
}

/** Relative imports of a source file, static and dynamic, type-only ones included (they couple layers too). */
function importsOf(text: string): string[] {
  return [...text.matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)].map((m) => m[1]!);
}

/** The imports of `file` (with source `text`) that its layer may not make. */
function violations(file: string, text: string): string[] {
  const from = layerOf(file);
  const out: string[] = [];
  for (const spec of importsOf(text)) {
    const to = layerOf(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    if (to === from || to === 'errors') continue;
    const allowed = from === 'cli' ? ALLOWED.cli!.includes(to) : ALLOWED[from]?.includes(to);
    if (!allowed) out.push(`${relative(SRC, file)} imports ${spec} (${from} -> ${to})`);
  }
  return out;
}

describe('architecture', () => {
  it('no layer imports one above it or beside it', async () => {
    const files = await sources(SRC);
    assert.ok(files.length > 50, `found only ${files.length} source files`);
    const found: string[] = [];
    for (const file of files) found.push(...violations(file, await readFile(file, 'utf8')));
    assert.deepEqual(found, []);
  });

  it('every layer is known to the rules, so a new one must say what it may import', async () => {
    const folders = (await readdir(SRC, { withFileTypes: true })).filter((e) => e.isDirectory() || e.name === 'cli.ts').map((e) => e.name);
    assert.deepEqual(
      folders.filter((f) => !(f in ALLOWED)),
      [],
    );
  });

  it('the check refuses a layer reaching up or sideways, static, dynamic or type-only', () => {
    const at = (path: string) => join(SRC, path);
    assert.equal(violations(at('restore/x.ts'), "import type { Target } from '../targets/target.js';").length, 1);
    assert.equal(violations(at('restore/x.ts'), "const c = await import('../crypto/seipd.js');").length, 1);
    assert.equal(violations(at('targets/s3/x.ts'), "import { Layout } from '../../repo/layout.js';").length, 1);
    assert.equal(violations(at('backup/x.ts'), "import { startKubernetes } from '../k8s/index.js';").length, 1);
    assert.equal(violations(at('repo/x.ts'), "import { runBackup } from '../backup/backup.js';").length, 1);
    assert.equal(violations(at('util/x.ts'), "import { Layout } from '../repo/layout.js';").length, 1);
    assert.deepEqual(violations(at('restore/x.ts'), "import { KbrackupError } from '../errors.js';\nimport { SafeDirs } from './safe-path.js';"), []);
    assert.deepEqual(violations(at('cli.ts'), "import { main } from './cli/main.js';"), []);
  });
});
