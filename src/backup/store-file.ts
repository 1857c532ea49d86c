import { createHmac, randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOCKS_AHEAD, type BlockCuts, type ChunkThread, type Slot } from '../chunker/chunk-thread.js';
import type { RepoSecrets } from '../crypto/kdf.js';
import { encodeTrailer } from '../repo/content-codec.js';
import { encodeObjectBlobs, type ObjectBlobs } from '../repo/index/blob-list.js';
import { Layout } from '../repo/layout.js';
import { dataExtents, sparseSupported, withPathAsync, type Extent } from '../platform/index.js';
import type { Content } from '../repo/tree/entry.js';
import { toBytes, type ByteString } from '../repo/tree/names.js';
import type { FinishedTree } from '../repo/tree/tree-writer.js';
import type { ByteBudget } from '../util/byte-budget.js';
import { ChunkEncoder } from './chunk-encoder.js';
import { ContentBuilder } from './content-builder.js';
import type { Packer } from './packer.js';
import type { RunIndex } from './run-index.js';
import type { SessionKeys } from './session-keys.js';
import type { Uploader } from './uploader.js';
import type { FileMeta } from './walker.js';

/** Everything storing a file needs; shared by all workers of one backup run. */
export interface StoreContext {
  tempDir: string;
  budget: ByteBudget;
  /** Temp bytes reserved per chunk in flight: the largest chunk plus encryption overhead. */
  chunkReserve: number;
  smallFile: number;
  uploader: Uploader;
  packer: Packer;
  keys: SessionKeys;
  index: RunIndex;
  secrets: RepoSecrets;
  /** Cuts, hashes and names the chunks of large files beside the main thread. */
  chunker: ChunkThread;
  signal: AbortSignal;
  /** Counts bytes read from sources and bytes added to the repository. */
  onRead: (bytes: number) => void;
  onAdded: (bytes: number) => void;
}

/** What storing a file produced. */
export interface StoredFile {
  size: number;
  /** Absent for a sparse file (its holes are not read, so not hashed). */
  sha256?: string;
  content: Content;
  /** A long content list's own object, to store before the snapshot. */
  list?: FinishedTree;
}

/** Read size of the second pass over new chunks of a changed file. */
const READ_SIZE = 256 * 1024;

/** A block of the chunk thread's ring and the bytes read into it. */
interface Block {
  slot: Slot;
  data: Buffer;
}

/** The bytes of a chunk read in the scan differ from those read to encrypt it: the file is being written. */
class ChangedDuringRead extends Error {}

/**
 * The data extents of a sparse file (allocated blocks fewer than its size), or undefined for a file to
 * read whole: holes are neither read nor stored, and come back as holes.
 */
function sparseExtents(fd: number, stat: FileMeta): Iterable<Extent> | undefined {
  if (!sparseSupported() || stat.blocks * 512 >= stat.size) return undefined;
  const size = stat.size;
  const extents = dataExtents(fd, size);
  const first = extents.next();
  if (!first.done && first.value.offset === 0 && first.value.length === size) return undefined;
  return (function* () {
    if (!first.done) yield first.value;
    yield* extents;
  })();
}

/**
 * Store a large file's content as chunk objects (small files go through small-files.ts). A file with a
 * previous version (`changed`) is scanned first and only its new chunks are read again and encrypted;
 * a new file goes in one pass (under a pod's memory limit a second read may hit the disk again).
 */
export async function storeFile(ctx: StoreContext, path: ByteString, stat: FileMeta, changed: boolean): Promise<StoredFile> {
  const handle = await withPathAsync(toBytes(path), (p) => open(p, 'r'));
  try {
    if (changed) {
      try {
        return await storeContent(ctx, handle, stat, true);
      } catch (err) {
        if (!(err instanceof ChangedDuringRead)) throw err;
        // One pass names every chunk by the bytes it encrypted, so ids and file hash stay consistent.
      }
    }
    return await storeContent(ctx, handle, stat, false);
  } finally {
    await handle.close();
  }
}

/** Store the file whole, or (sparse) extent by extent with holes between; a sparse file records no SHA-256. */
async function storeContent(ctx: StoreContext, handle: FileHandle, stat: FileMeta, scanFirst: boolean): Promise<StoredFile> {
  const chunks = new ContentBuilder(ctx.secrets, ctx.tempDir);
  try {
    const extents = sparseExtents(handle.fd, stat);
    if (!extents) {
      // Never past the size the walk saw: a file appended faster than it is read would never end.
      const { read, sha256 } = await storeRange(ctx, handle, chunks, scanFirst, 0, Number(stat.size));
      return { size: read, sha256, ...(await chunks.finish()) };
    }
    let pos = 0;
    for (const extent of extents) {
      await chunks.hole(extent.offset - pos);
      const { read } = await storeRange(ctx, handle, chunks, scanFirst, extent.offset, extent.offset + extent.length);
      pos = extent.offset + read;
      if (read < extent.length) break;
    }
    const size = Math.max(pos, stat.size);
    await chunks.hole(size - pos);
    return { size, ...(await chunks.finish()) };
  } catch (err) {
    await chunks.abort();
    throw err;
  }
}

/** Chunks finishing (last write, close, index) while the next one is encrypted. */
const CLOSING = 2;

/** Chunk, name and store the bytes from `start` to `end` (or to an earlier end of the file); returns how many were read. */
async function storeRange(ctx: StoreContext, handle: FileHandle, chunks: ContentBuilder, scanFirst: boolean, start: number, end: number): Promise<{ read: number; sha256: string }> {
  const chunking = ctx.chunker.open();
  let open: { encoder: ChunkEncoder; path: string } | undefined;
  let chunkStart = start;
  let pos = start;
  let at = start;
  // In file order; each settles by itself, so a failure of one never strands the others' temp files.
  const closing: Promise<{ id: Buffer; length: number }>[] = [];
  const settle = async (bound: number): Promise<void> => {
    while (closing.length > bound) {
      const done = await closing.shift()!;
      await chunks.data(done.id, done.length);
    }
  };
  // A scanned chunk is looked up (and read again only if new); a chunk encrypted in this pass is closed.
  const finishChunk = (end: number, id: Buffer): void => {
    const length = end - chunkStart;
    let done: Promise<void>;
    if (scanFirst) done = scannedChunk(ctx, handle, chunkStart, length, id);
    else {
      // In this pass a chunk only ends after bytes of it were written, so it is open.
      const { encoder, path } = open as { encoder: ChunkEncoder; path: string };
      done = closeChunk(ctx, encoder, path, id);
    }
    const closed = done.then(() => ({ id, length }));
    // Awaited in order later; a failure meanwhile must not count as unhandled (it would end the process).
    closed.catch(() => undefined);
    closing.push(closed);
    open = undefined;
    chunkStart = end;
  };
  const encodeBlock = async (data: Buffer, { cuts, ids }: BlockCuts): Promise<void> => {
    let from = 0;
    for (let i = 0; i <= cuts.length; i++) {
      const to = cuts[i] ?? data.length;
      if (!scanFirst && to > from) {
        open ??= await openChunk(ctx);
        await open.encoder.write(data.subarray(from, to));
      }
      at += to - from;
      from = to;
      if (i < cuts.length) {
        finishChunk(at, ids[i] as Buffer);
        await settle(CLOSING);
      }
    }
  };
  // Blocks are read into the chunk thread's ring and released once encrypted: the encoder keeps no views.
  const readAt = (offset: number): Promise<Block> => {
    const slot = chunking.take();
    const want = Math.min(slot.buf.length, end - offset);
    const read = (want === 0 ? Promise.resolve({ bytesRead: 0 }) : handle.read(slot.buf, 0, want, offset)).then(({ bytesRead }) => ({ slot, data: slot.buf.subarray(0, bytesRead) }));
    read.catch(() => undefined);
    return read;
  };
  // Three stages overlap: the thread pool reads ahead, the chunk thread cuts a few blocks ahead, and this
  // thread encrypts the oldest; a few blocks of slack keep both threads busy despite uneven blocks.
  let next: Promise<Block> | undefined = readAt(start);
  const cutting: (Block & { cuts: Promise<BlockCuts> })[] = [];
  try {
    for (;;) {
      ctx.signal.throwIfAborted();
      while (next !== undefined && cutting.length < BLOCKS_AHEAD) {
        const block: Block = await next;
        if (block.data.length === 0) {
          chunking.release(block.slot);
          next = undefined;
          break;
        }
        pos += block.data.length;
        next = readAt(pos);
        ctx.onRead(block.data.length);
        cutting.push({ ...block, cuts: chunking.cut(block.slot, block.data.length) });
      }
      const oldest = cutting.shift();
      if (oldest === undefined) break;
      await encodeBlock(oldest.data, await oldest.cuts);
      chunking.release(oldest.slot);
    }
    const { sha256, lastId } = await chunking.end();
    if (lastId) finishChunk(pos, lastId);
    await settle(0);
    return { read: pos - start, sha256 };
  } catch (err) {
    chunking.abandon();
    // The caller closes the handle: the read in flight and the chunks closing must be over by then.
    await next?.catch(() => undefined);
    await Promise.allSettled(closing);
    if (open) await dropChunk(ctx, open.encoder, open.path);
    throw err;
  }
}

/** A chunk found by the scan: a known id is only referenced; a new one is read again and encrypted. */
async function scannedChunk(ctx: StoreContext, handle: FileHandle, offset: number, length: number, id: Buffer): Promise<void> {
  if ((await ctx.index.has(id)) || !ctx.index.claim(id)) return;
  let opened: { encoder: ChunkEncoder; path: string } | undefined;
  try {
    opened = await openChunk(ctx);
    const reread = createHmac('sha256', ctx.secrets.chunkIdKey);
    for (let done = 0; done < length; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, length - done));
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset + done);
      if (bytesRead === 0) throw new ChangedDuringRead();
      ctx.onRead(bytesRead);
      reread.update(buf.subarray(0, bytesRead));
      await opened.encoder.write(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
    // Never store data under another chunk's id: a mismatch means the file changed between the passes.
    if (!reread.digest().equals(id)) throw new ChangedDuringRead();
  } catch (err) {
    ctx.index.unclaim(id);
    if (opened) await dropChunk(ctx, opened.encoder, opened.path);
    throw err;
  }
  await finishClaimed(ctx, opened.encoder, opened.path, id);
}

async function openChunk(ctx: StoreContext): Promise<{ encoder: ChunkEncoder; path: string }> {
  await ctx.budget.reserve(ctx.chunkReserve);
  const path = join(ctx.tempDir, `chunk-${randomBytes(12).toString('hex')}`);
  return { encoder: new ChunkEncoder(path, await ctx.keys.next()), path };
}

/** Delete a chunk's temp file and give back its temp space. */
async function freeTemp(ctx: StoreContext, path: string): Promise<void> {
  await rm(path, { force: true });
  ctx.budget.release(ctx.chunkReserve);
}

/** Abandon a chunk being encoded. */
async function dropChunk(ctx: StoreContext, encoder: ChunkEncoder, path: string): Promise<void> {
  await encoder.abort();
  await freeTemp(ctx, path);
}

/** Finish a chunk encrypted in one pass: a known id is dropped (dedup), a new one stored. */
async function closeChunk(ctx: StoreContext, encoder: ChunkEncoder, path: string, id: Buffer): Promise<void> {
  if ((await ctx.index.has(id)) || !ctx.index.claim(id)) {
    await dropChunk(ctx, encoder, path);
    return;
  }
  await finishClaimed(ctx, encoder, path, id);
}

/** Complete a claimed chunk's object (blob, trailer, footer), make it known and queue its upload. */
async function finishClaimed(ctx: StoreContext, encoder: ChunkEncoder, path: string, id: Buffer): Promise<void> {
  const hex = id.toString('hex');
  const name = Layout.chunk(hex);
  let blobs: ObjectBlobs | undefined;
  let chunk;
  try {
    chunk = await encoder.finish((c) => {
      blobs = {
        kind: 'chunk',
        objectId: hex,
        sections: [{ keyOffset: 0, bundles: [{ offset: c.headerLength, length: c.size - c.headerLength, blobs: [{ id, offset: 0, length: c.rawLength }] }] }],
      };
      return encodeTrailer(ctx.secrets, name, encodeObjectBlobs(blobs), 1);
    });
  } catch (err) {
    ctx.index.unclaim(id);
    await dropChunk(ctx, encoder, path);
    throw err;
  }
  const bundle = blobs!.sections[0]!.bundles[0]!;
  await ctx.index.located([{ id, loc: { kind: 'chunk', objectId: hex, keyOffset: 0, bundleOffset: bundle.offset, bundleLength: bundle.length, blobOffset: 0, rawLength: chunk.rawLength } }]);
  await ctx.index.recordObject(encodeObjectBlobs(blobs!));
  ctx.onAdded(chunk.size);
  // The reserve was for the largest chunk; now that the size is known, the rest is free for others.
  ctx.budget.release(Math.max(0, ctx.chunkReserve - chunk.size));
  ctx.uploader.submit(name, { file: path, size: chunk.size }, Math.min(ctx.chunkReserve, chunk.size));
}
