import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { PublicKey } from 'openpgp';
import { sealSessionKey } from '../../src/crypto/envelope.js';
import { deriveRepoSecrets, newKey, type RepoSecrets } from '../../src/crypto/kdf.js';
import { readPublicKeys } from '../../src/crypto/keys.js';
import { PacketBodyReader, PacketTag, packetHeader } from '../../src/crypto/packets.js';
import { newSessionKey } from '../../src/crypto/seipd.js';
import { sealBytes } from '../../src/repo/blob.js';
import { readCredentials } from '../../src/repo/credentials.js';
import { encodeBlobList, parseBlobList } from '../../src/repo/index/blob-list.js';
import type { IndexEntry } from '../../src/repo/index/records.js';
import { Layout } from '../../src/repo/layout.js';
import { decodeMeta, encodeMeta } from '../../src/repo/meta-codec.js';
import type { Snapshot } from '../../src/repo/snapshot.js';
import { decodeEntry, type ContentPart, type FileEntry, type TreeEntry } from '../../src/repo/tree/entry.js';
import { TreeWriter, type FinishedTree } from '../../src/repo/tree/tree-writer.js';
import type { RunResult } from './cli.js';
import { logLines } from './output.js';
import type { Fixture } from './repo.js';

/**
 * Hostile repositories built with kbrackup's own encoders, as an attacker would: the storage knows
 * only the stored bytes and the owner's public key (so it makes up a repository key of its own), a
 * holder of the backup credentials also knows the real repository key. Nothing here bypasses a check;
 * it only writes bytes where the storage could.
 */

/** Secrets derived from a repository key the attacker made up: what the storage can encrypt metadata with. */
export function madeUpSecrets(): RepoSecrets {
  return deriveRepoSecrets(newKey());
}

/** The real secrets, from the fixture's backup credentials (what a stolen backup.cred gives). */
export async function credentialSecrets(fx: Fixture): Promise<RepoSecrets> {
  return deriveRepoSecrets(Buffer.from((await readCredentials(fx.cred)).repoKey, 'base64'));
}

/** The owner's public key: in kbrackup.json's recipients and every backup.cred, public by design. */
export async function ownerPublicKey(fx: Fixture): Promise<PublicKey> {
  return (await readPublicKeys(await readFile(fx.pub, 'utf8'), fx.pub))[0]!;
}

/** A stored object's bytes. */
export function readObject(fx: Pick<Fixture, 'repo'>, name: string): Promise<Buffer> {
  return readFile(join(fx.repo, name));
}

/** Store bytes under an object name, as the storage can (replacing what is there). */
export async function writeObject(fx: Pick<Fixture, 'repo'>, name: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(join(fx.repo, name)), { recursive: true });
  await writeFile(join(fx.repo, name), bytes);
}

/** Remove an object, as the storage can. */
export function deleteObject(fx: Pick<Fixture, 'repo'>, name: string): Promise<void> {
  return rm(join(fx.repo, name));
}

/** Keep a copy of the repository as it is now; the function returned puts it back (before each attack). */
export async function keepPristine(fx: Fixture): Promise<() => Promise<void>> {
  const pristine = `${fx.repo}.pristine`;
  await cp(fx.repo, pristine, { recursive: true });
  return async () => {
    await rm(fx.repo, { recursive: true, force: true });
    await cp(pristine, fx.repo, { recursive: true });
  };
}

/** Names of the objects below a folder of the layout, sorted. */
export async function objectNames(fx: Pick<Fixture, 'repo'>, dir: string): Promise<string[]> {
  const entries = await readdir(join(fx.repo, dir), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(fx.repo.length + 1))
    .sort();
}

/** Everything below a folder (relative paths, hidden temp files too), or [] when it does not exist. */
export async function everythingUnder(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true }).catch(() => [])) as string[]).sort();
}

/** The keyed id of a blob's plaintext. */
export function blobId(secrets: RepoSecrets, data: Buffer): string {
  return createHmac('sha256', secrets.chunkIdKey).update(data).digest('hex');
}

/** A stored snapshot as it decrypts with `secrets`. */
export async function readSnapshot(fx: Pick<Fixture, 'repo'>, secrets: RepoSecrets, name: string): Promise<Snapshot> {
  return JSON.parse(decodeMeta(secrets, name, await readObject(fx, name), 1 << 24).toString('utf8')) as Snapshot;
}

/** The entries of a stored tree as they decrypt with `secrets`. */
export async function readTree(fx: Pick<Fixture, 'repo'>, secrets: RepoSecrets, id: string): Promise<TreeEntry[]> {
  const name = Layout.tree(id);
  const lines = decodeMeta(secrets, name, await readObject(fx, name), 1 << 28).toString('utf8').split('\n').slice(0, -1);
  return lines.map((line, i) => decodeEntry(line, name, i + 1));
}

/** Every entry of every stored index object, as they decrypt with `secrets`. */
export async function readIndex(fx: Pick<Fixture, 'repo'>, secrets: RepoSecrets): Promise<IndexEntry[]> {
  const out: IndexEntry[] = [];
  for (const name of await objectNames(fx, Layout.indexDir)) out.push(...parseBlobList(decodeMeta(secrets, name, await readObject(fx, name), 1 << 28), name));
  return out;
}

/** A tree object for `entries` (in name order) encrypted under `secrets`, as a backup would write it. */
export async function forgeTree(secrets: RepoSecrets, entries: TreeEntry[]): Promise<{ id: string; name: string; bytes: Buffer }> {
  const temp = await mkdtemp(join(tmpdir(), 'kbrackup-forge-'));
  try {
    const writer = new TreeWriter(secrets, temp);
    for (const e of entries) await writer.add(e);
    return finished(await writer.finish());
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

async function finished(tree: FinishedTree): Promise<{ id: string; name: string; bytes: Buffer }> {
  return { id: tree.id, name: tree.name, bytes: 'bytes' in tree.source ? tree.source.bytes : await readFile(tree.source.file) };
}

/** A tree or content-list object made of raw JSON lines (malformed ones too), named by their keyed hash. */
export function forgeLines(secrets: RepoSecrets, lines: string[]): { id: string; name: string; bytes: Buffer } {
  const plain = Buffer.from(lines.map((l) => `${l}\n`).join(''));
  const id = createHmac('sha256', secrets.treeIdKey).update(plain).digest('hex');
  const name = Layout.tree(id);
  return { id, name, bytes: encodeMeta(secrets, name, plain) };
}

/** A snapshot of `tree`, newer than any real one; `fields` override (or break) any field. */
export function forgeSnapshot(secrets: RepoSecrets, tree: string, fields: Record<string, unknown> = {}, source = 'src'): { name: string; id: string; bytes: Buffer } {
  const id = randomBytes(32).toString('hex');
  const time = new Date(Date.now() + 3_600_000);
  const snapshot = {
    id,
    time: time.toISOString(),
    source,
    paths: ['/src'],
    hostname: 'backup-pod',
    username: 'root',
    tags: [],
    program_version: 'kbrackup 0.1.0',
    tree,
    summary: Object.fromEntries(
      ['files_new', 'files_changed', 'files_unmodified', 'dirs_new', 'dirs_changed', 'dirs_unmodified', 'data_added', 'data_added_packed', 'total_files_processed', 'total_bytes_processed', 'bytes_read', 'error_count'].map((k) => [k, 0]),
    ),
    ...fields,
  };
  const name = Layout.snapshot(source, time, id);
  return { name, id, bytes: encodeMeta(secrets, name, Buffer.from(JSON.stringify(snapshot))) };
}

/** A file entry for `data` (or for `parts` of a given `size` when they lie about it). */
export function fileEntry(name: string, content: { data: Buffer; parts: ContentPart[] } | { size: number; parts: ContentPart[] } | { size: number; list: string; count: number }, mode = 0o644): FileEntry {
  const size = 'data' in content ? content.data.length : content.size;
  const entry: FileEntry = { type: 'file', name, mode, uid: 0, gid: 0, mtime: '1700000000000000000', size, ctime: '1700000000000000000', ino: '1', content: 'list' in content ? { list: content.list, count: content.count } : { parts: content.parts } };
  if ('data' in content) entry.sha256 = createHash('sha256').update(content.data).digest('hex');
  return entry;
}

/**
 * A chunk object holding `data`, encrypted to `publicKey` exactly as backups encrypt content (key
 * packets, then one bundle; no trailer, which restore does not read), and where its bundle lies.
 */
export async function forgeChunk(publicKey: PublicKey, data: Buffer, codec: 'none' | 'zlib' = 'none'): Promise<{ bytes: Buffer; bundleOffset: number; bundleLength: number }> {
  const sessionKey = newSessionKey();
  const header = await sealSessionKey(sessionKey, { recipients: [publicKey], passwords: [] });
  const bundle = sealBytes(data, codec, sessionKey);
  return { bytes: Buffer.concat([header, bundle]), bundleOffset: header.length, bundleLength: bundle.length };
}

/** An index object listing `entries`, encrypted under `secrets`. */
export async function forgeIndex(secrets: RepoSecrets, entries: IndexEntry[]): Promise<{ name: string; bytes: Buffer }> {
  const parts: Buffer[] = [];
  for await (const part of encodeBlobList(entries)) parts.push(part);
  const name = Layout.index(randomBytes(32).toString('hex'));
  return { name, bytes: encodeMeta(secrets, name, Buffer.concat(parts)) };
}

/** The body of the single OpenPGP packet in `packet`, whatever its framing. */
export function packetBody(packet: Buffer): Buffer {
  const reader = new PacketBodyReader();
  const body = Buffer.concat(reader.push(packet));
  if (!reader.done) throw new Error('packetBody: not one whole packet');
  return body;
}

/** A SEIPD packet around `body` with a definite length: well-framed whatever was cut from the body. */
export function definitePacket(body: Buffer): Buffer {
  return Buffer.concat([packetHeader(PacketTag.seipd, body.length), body]);
}

/**
 * A refusal as the hostile tests require it: the exit code, one fatal line naming the object first
 * (and matching `reason`), no stack trace.
 */
export function expectRefused(result: RunResult, code: number, object: string, reason?: RegExp): string {
  const errors = logLines(result.stderr).filter((l) => l.level >= 50);
  const detail = `\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
  assert.equal(result.code, code, `exit code${detail}`);
  assert.equal(errors.length, 1, `one error line${detail}`);
  const message = errors[0]!.msg;
  assert.ok(message.includes(object), `the error names ${object}: ${message}`);
  if (reason) assert.match(message, reason);
  assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/, `stack trace in:${detail}`);
  return message;
}

/** The warnings of a run that name `object`. */
export function warningsAbout(result: RunResult, object: string): string[] {
  return logLines(result.stderr)
    .filter((l) => l.level === 40 && (l.object === object || l.msg.includes(object)))
    .map((l) => l.msg);
}

/** Nothing at all in a restore destination: no file, no folder, no hidden temp file. */
export async function expectNothingWritten(destination: string): Promise<void> {
  assert.deepEqual(await everythingUnder(destination), [], `${destination} should hold nothing`);
}
