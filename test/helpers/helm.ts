import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHART = join(ROOT, 'helm/kbrackup');
export const CI = join(CHART, 'ci');
const RENDERER_SRC = join(ROOT, 'test/helm-render');

/** A parsed Kubernetes object or values tree. */
export type Obj = Record<string, any>;

/** What the renderer prints with --json: every document with its template, and NOTES.txt. */
export interface Rendered {
  manifests: Array<{ source: string; doc: Obj }>;
  notes: string;
}

let renderer: string | undefined;

/** Build the Go renderer once per version of its source (cached in the temp dir across runs). */
function binary(): string {
  if (renderer) return renderer;
  const hash = createHash('sha256').update(readFileSync(join(RENDERER_SRC, 'main.go'))).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `kbrackup-helm-render-${hash}`);
  const bin = join(dir, 'helm-render');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}`;
    execFileSync('go', ['build', '-o', tmp, '.'], {
      cwd: RENDERER_SRC,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(tmpdir(), 'kbrackup-gocache'), GOFLAGS: '' },
    });
    renameSync(tmp, bin);
  }
  renderer = bin;
  return bin;
}

const scratch = mkdtempSync(join(tmpdir(), 'kbrackup-helm-'));

/** A values file in a scratch folder, for values a test spells out inline. */
export function valuesFile(yaml: string): string {
  const file = join(scratch, `${createHash('sha256').update(yaml).digest('hex').slice(0, 12)}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/** Render the chart as release "kb" in namespace backup; flags such as --namespace=NS, --revision=N, --is-upgrade may be mixed in. */
export function render(...args: string[]): Rendered {
  const flags = args.filter((a) => a.startsWith('--'));
  const files = args.filter((a) => !a.startsWith('--'));
  const hasNamespace = flags.some((f) => f.startsWith('--namespace'));
  return JSON.parse(execFileSync(binary(), ['--json', '--name', 'kb', ...(hasNamespace ? [] : ['--namespace', 'backup']), ...flags, CHART, ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }));
}

/** Render and expect the chart to refuse; returns its error message. */
export function renderError(values: string): string {
  const res = spawnSync(binary(), ['--json', CHART, valuesFile(values)], { encoding: 'utf8' });
  assert.notEqual(res.status, 0, `expected the chart to reject:\n${values}`);
  return res.stderr;
}

/** Every YAML document of the files, parsed. */
export function yamlDocs(...files: string[]): Obj[] {
  return JSON.parse(execFileSync(binary(), ['yaml2json', ...files], { encoding: 'utf8' }));
}

/** The values as Helm merges them before checking values.schema.json. */
export function mergedValues(...valueFiles: string[]): Obj {
  return JSON.parse(execFileSync(binary(), ['values', CHART, ...valueFiles], { encoding: 'utf8' }));
}

/** The documents of one kind. */
export function byKind(r: Rendered, kind: string): Obj[] {
  return r.manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
}

/** The pod spec of a CronJob, Job or Pod. */
export function podSpec(doc: Obj): Obj {
  return doc.kind === 'CronJob' ? doc.spec.jobTemplate.spec.template.spec : doc.kind === 'Job' ? doc.spec.template.spec : doc.spec;
}

/** The first container of a workload. */
export function container(doc: Obj): Obj {
  return podSpec(doc).containers[0];
}

/** One environment variable of a container. */
export function env(c: Obj, name: string): Obj | undefined {
  return (c.env as Obj[]).find((e) => e.name === name);
}
