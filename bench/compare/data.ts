// The data sets of the side-by-side benchmark (issues 12 and 13), generated at bench time from seeds:
// every run on every machine backs up the same bytes, and nothing large is kept in git.
// Writes are synchronous: a million small files take tens of seconds this way, several times less
// than with the promise API (its per-call cost dominates files of 100 bytes).
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Prng } from '../../test/fixtures/prng.js';
import { sha256File, writePseudoRandom } from '../../test/helpers/data.js';

const KiB = 1024;
const GiB = 1024 ** 3;

/** Where a set's repositories live. */
export type Target = 'local' | 's3' | 'sftp';

/** One data set: `folders` × `filesPerFolder` text files of `minBytes`–`maxBytes`, and an optional big random file. */
export interface SetSpec {
  name: string;
  /** Seeds of the content: sets with the same seed hold the same bytes (the mix on each target). */
  seed: string;
  target: Target;
  folders: number;
  filesPerFolder: number;
  minBytes: number;
  maxBytes: number;
  /** Size of `big.bin` at the top (0: none). */
  bigBytes: number;
  /** Also time `ls` of one folder and the restore of one file (issue 12's 1,000,000-file goals). */
  lookups: boolean;
}

/** All sets, their counts of folders and the big file's size multiplied by `scale` (files per folder stay). */
export function dataSets(scale: number): SetSpec[] {
  const folders = (n: number): number => Math.max(1, Math.round(n * scale));
  const bigBytes = Math.round(2 * GiB * scale);
  const mix = { seed: 'mix', folders: folders(200), filesPerFolder: 100, minBytes: 200, maxBytes: 16 * KiB, bigBytes, lookups: false };
  const tinyFiles = { minBytes: 80, maxBytes: 120, lookups: true, bigBytes: 0 };
  return [
    { name: 'tiny', seed: 'tiny', target: 'local', folders: folders(500), filesPerFolder: 200, ...tinyFiles },
    { name: 'mix', target: 'local', ...mix },
    { name: 'big', seed: 'big', target: 'local', folders: 0, filesPerFolder: 0, minBytes: 0, maxBytes: 0, bigBytes, lookups: false },
    { name: 'million', seed: 'million', target: 'local', folders: folders(1000), filesPerFolder: 1000, ...tinyFiles },
    { name: 'mix-s3', target: 's3', ...mix },
    { name: 'mix-sftp', target: 'sftp', ...mix },
  ];
}

/** Human size: 2 GiB, 16 KiB, 120 B. */
export function size(bytes: number): string {
  for (const [unit, n] of [['GiB', GiB], ['MiB', 1024 * KiB], ['KiB', KiB]] as const) if (bytes >= n) return `${+(bytes / n).toFixed(1)} ${unit}`;
  return `${bytes} B`;
}

/** What a set holds, in words: "100,000 text files of 80 B–120 B in 500 folders". */
export function describe(spec: SetSpec): string {
  const files = spec.folders * spec.filesPerFolder;
  const small = files ? `${files.toLocaleString('en-US')} text files of ${size(spec.minBytes)}–${size(spec.maxBytes)} in ${spec.folders} folders` : '';
  const big = spec.bigBytes ? `a ${size(spec.bigBytes)} pseudo-random file` : '';
  const where = { local: '', s3: ', to s3rver', sftp: ', to sshd' }[spec.target];
  return [big, small].filter(Boolean).join(' + ') + where;
}

/** The folder and file names of a set (fixed width, so byte order is numeric order). */
export const folderName = (i: number): string => `d${String(i).padStart(4, '0')}`;
export const fileName = (i: number): string => `f${String(i).padStart(4, '0')}.txt`;

/** 4,096 words of 2–9 letters: text made of them compresses about as well as prose. */
const WORDS: Buffer[] = (() => {
  const bytes = new Prng('kbrackup bench words').next(4096 * 10);
  return Array.from({ length: 4096 }, (_, w) => {
    const at = w * 10;
    const length = 2 + (bytes[at]! % 8);
    return Buffer.from(Array.from({ length }, (_, i) => 97 + (bytes[at + 1 + i]! % 26)));
  });
})();

/** `bytes` of text: `header`, then words from `prng`, lines of ~72 characters, a final newline. */
function text(prng: Prng, bytes: number, header: string): Buffer {
  const out = Buffer.alloc(bytes);
  let at = out.write(header, 'latin1');
  let lineStart = 0;
  // Every word but the last takes at least 3 bytes (separator + 2 letters): this many picks suffice.
  const picks = prng.next(2 * Math.ceil(bytes / 3) + 2);
  for (let p = 0; at < bytes; p += 2) {
    const newline = at - lineStart > 72;
    if (newline) lineStart = at + 1;
    out[at++] = newline ? 10 : 32;
    at += WORDS[picks.readUInt16LE(p) % WORDS.length]!.copy(out, at);
  }
  out[bytes - 1] = 10;
  return out;
}

/** A size in [minBytes, maxBytes], uniformly. */
function pickSize(prng: Prng, spec: SetSpec): number {
  return spec.minBytes + (prng.next(4).readUInt32LE(0) % (spec.maxBytes - spec.minBytes + 1));
}

/** Writes files 0..count-1 of folder `folder` at content version `version` (0 = as generated). */
function writeFolder(root: string, spec: SetSpec, folder: number, count: number, version: number): number {
  const prng = new Prng(`${spec.seed}/${folderName(folder)}/v${version}`);
  let bytes = 0;
  for (let f = 0; f < count; f++) {
    const rel = `${folderName(folder)}/${fileName(f)}`;
    const data = text(prng, pickSize(prng, spec), `${rel} v${version}\n`);
    writeFileSync(join(root, rel), data);
    bytes += data.length;
  }
  return bytes;
}

/** Files and bytes of a set, or of the part of it one round changes. */
export interface Amount {
  files: number;
  bytes: number;
}

/** Creates the set under `root` (which must not exist yet). */
export async function generate(root: string, spec: SetSpec): Promise<Amount> {
  mkdirSync(root, { recursive: true });
  let bytes = 0;
  for (let d = 0; d < spec.folders; d++) {
    mkdirSync(join(root, folderName(d)));
    bytes += writeFolder(root, spec, d, spec.filesPerFolder, 0);
  }
  if (spec.bigBytes) await writePseudoRandom(join(root, 'big.bin'), spec.bigBytes, `${spec.seed}/big.bin`);
  return { files: spec.folders * spec.filesPerFolder + (spec.bigBytes ? 1 : 0), bytes: bytes + spec.bigBytes };
}

/**
 * One round's change, as issues 12 and 13 describe it: 1% of the small files, all of them in 1% of the
 * folders (at least one of each, spread evenly), rewritten with new content of new sizes. A set
 * without small files changes 1% of its big file instead: one run of new bytes in the middle.
 * `version` (≥ 1) makes each round's new content different from every earlier one.
 */
export function change(root: string, spec: SetSpec, version: number): Amount {
  if (spec.folders === 0) {
    const length = Math.max(1, Math.round(spec.bigBytes / 100));
    const prng = new Prng(`${spec.seed}/big.bin/v${version}`);
    const fd = openSync(join(root, 'big.bin'), 'r+');
    try {
      const start = Math.floor((spec.bigBytes - length) / 2);
      for (let done = 0; done < length; ) {
        const block = prng.next(Math.min(8 * 1024 * KiB, length - done));
        done += writeSync(fd, block, 0, block.length, start + done);
      }
    } finally {
      closeSync(fd);
    }
    return { files: 1, bytes: length };
  }
  const folders = Math.max(1, Math.round(spec.folders / 100));
  const perFolder = Math.min(spec.filesPerFolder, Math.ceil(Math.max(1, Math.round((spec.folders * spec.filesPerFolder) / 100)) / folders));
  let bytes = 0;
  for (let i = 0; i < folders; i++) bytes += writeFolder(root, spec, Math.floor(((i + 0.5) * spec.folders) / folders), perFolder, version);
  return { files: folders * perFolder, bytes };
}

/** The folder and file a set's lookups (`ls`, restore of one file) ask for: the ones in the middle. */
export function lookupPaths(spec: SetSpec): { folder: string; file: string } {
  const folder = folderName(Math.floor(spec.folders / 2));
  return { folder, file: `${folder}/${fileName(Math.floor(spec.filesPerFolder / 2))}` };
}

/** SHA-256 of a file: read whole when small (most are), streamed when large. */
export async function fileDigest(path: string, bytes = statSync(path).size): Promise<string> {
  return bytes <= 16 * 1024 * KiB ? createHash('sha256').update(readFileSync(path)).digest('hex') : sha256File(path);
}

/** A digest of a folder's tree (names, sizes and contents of its files): a restore must reproduce the source's. */
export async function treeDigest(root: string): Promise<string> {
  const all = createHash('sha256');
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        all.update(`${rel}${entry.name}/\n`);
        await walk(path, `${rel}${entry.name}/`);
      } else {
        const bytes = statSync(path).size;
        all.update(`${rel}${entry.name} ${bytes} ${await fileDigest(path, bytes)}\n`);
      }
    }
  };
  await walk(root, '');
  return all.digest('hex');
}
