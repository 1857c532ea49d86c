import { createHash, createHmac, randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { BLOCKS_AHEAD, type BlockCuts, type ChunkThread, type Slot } from '../chunker/chunk-thread.js';
import { chooseCodec } from '../compress/codec.js';
import { Layout } from '../repo/layout.js';
import type { BlobLocation, ChunkRef } from '../repo/tree.js';
import type { ByteBudget } from './budget.js';
import { ChunkEncoder } from './chunk-encoder.js';
import type { ChunkIndex } from './chunk-index.js';
import { ChunkList } from './chunk-list.js';
import type { Packer } from './packer.js';
import type { SessionKeys } from './session-keys.js';
import type { Uploader } from './uploader.js';

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
  index: ChunkIndex;
  idKey: Buffer;
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
  sha256: string;
  chunks: ChunkList;
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
 * Store a file's content; small files go into packs, large ones are cut into chunk objects. A file with a
 * previous version (`changed`) is scanned first and only its new chunks are read again and encrypted;
 * a new file goes in one pass (DESIGN.md: under a pod's memory limit a second read may hit the disk).
 */
export async function storeFile(ctx: StoreContext, path: string, stat: BigIntStats, changed: boolean): Promise<StoredFile> {
  const handle = await open(path, 'r');
  try {
    const size = Number(stat.size);
    if (size < ctx.smallFile) {
      const small = await storeSmall(ctx, handle, size);
      if (small) return small;
    }
    if (changed) {
      try {
        return await storeLarge(ctx, handle, true);
      } catch (err) {
        if (!(err instanceof ChangedDuringRead)) throw err;
        // One pass names every chunk by the bytes it encrypted, so ids and file hash stay consistent.
      }
    }
    return await storeLarge(ctx, handle, false);
  } finally {
    await handle.close();
  }
}

async function storeSmall(ctx: StoreContext, handle: FileHandle, size: number): Promise<StoredFile | undefined> {
  // Reading one byte more than expected tells a file that grew since it was listed.
  const buf = Buffer.allocUnsafe(size + 1);
  let got = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
    if (got === buf.length) return undefined;
  }
  ctx.onRead(got);
  const data = buf.subarray(0, got);
  const chunks = new ChunkList(ctx.tempDir);
  if (got > 0) {
    const id = createHmac('sha256', ctx.idKey).update(data).digest();
    let location = await ctx.index.lookup(id);
    if (!location) {
      const stored = await ctx.packer.add(data, chooseCodec(data));
      // Another worker may have stored the same content meanwhile: then its blob is the one referenced.
      if (await ctx.index.add(id, stored)) {
        location = stored;
        ctx.onAdded(stored.length);
      } else location = (await ctx.index.lookup(id)) as BlobLocation;
    }
    await chunks.add({ id: id.toString('hex'), ...location });
  }
  return { size: got, sha256: createHash('sha256').update(data).digest('hex'), chunks };
}

/** Chunks finishing (last write, close, index) while the next one is encrypted. */
const CLOSING = 2;

async function storeLarge(ctx: StoreContext, handle: FileHandle, scanFirst: boolean): Promise<StoredFile> {
  const chunking = ctx.chunker.open();
  const chunks = new ChunkList(ctx.tempDir);
  let open: { encoder: ChunkEncoder; path: string } | undefined;
  let chunkStart = 0;
  let pos = 0;
  let at = 0;
  // In file order; each settles by itself, so a failure of one never strands the others' temp files.
  const closing: Promise<ChunkRef>[] = [];
  const settle = async (bound: number): Promise<void> => {
    while (closing.length > bound) await chunks.add(await (closing.shift() as Promise<ChunkRef>));
  };
  // A scanned chunk is looked up (and read again only if new); a chunk encrypted in this pass is closed.
  const finishChunk = (end: number, id: Buffer): void => {
    if (scanFirst) closing.push(scannedChunk(ctx, handle, chunkStart, end - chunkStart, id));
    else {
      // In this pass a chunk only ends after bytes of it were written, so it is open.
      const { encoder, path } = open as { encoder: ChunkEncoder; path: string };
      closing.push(closeChunk(ctx, encoder, path, id));
    }
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
    const read = handle.read(slot.buf, 0, slot.buf.length, offset).then(({ bytesRead }) => ({ slot, data: slot.buf.subarray(0, bytesRead) }));
    read.catch(() => undefined);
    return read;
  };
  // Three stages overlap: the thread pool reads ahead, the chunk thread cuts a few blocks ahead, and this
  // thread encrypts the oldest; a few blocks of slack keep both threads busy despite uneven blocks.
  let next: Promise<Block> | undefined = readAt(0);
  const cutting: (Block & { cuts: Promise<BlockCuts> })[] = [];
  try {
    for (;;) {
      ctx.signal.throwIfAborted();
      ctx.uploader.check();
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
    return { size: pos, sha256, chunks };
  } catch (err) {
    chunking.abandon();
    // The caller closes the handle: the read in flight and the chunks closing must be over by then.
    await next?.catch(() => undefined);
    await Promise.allSettled(closing);
    if (open) await dropChunk(ctx, open.encoder, open.path);
    await chunks.dispose();
    throw err;
  }
}

/** A chunk found by the scan: known ids are referenced; a new one is read again and encrypted. */
async function scannedChunk(ctx: StoreContext, handle: FileHandle, offset: number, length: number, id: Buffer): Promise<ChunkRef> {
  const known = await ctx.index.lookup(id);
  if (known) return { id: id.toString('hex'), ...known };
  const { encoder, path } = await openChunk(ctx);
  const reread = createHmac('sha256', ctx.idKey);
  try {
    for (let done = 0; done < length; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, length - done));
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset + done);
      if (bytesRead === 0) throw new ChangedDuringRead();
      ctx.onRead(bytesRead);
      reread.update(buf.subarray(0, bytesRead));
      await encoder.write(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
    // Never store data under another chunk's id: a mismatch means the file changed between the passes.
    if (!reread.digest().equals(id)) throw new ChangedDuringRead();
  } catch (err) {
    await dropChunk(ctx, encoder, path);
    throw err;
  }
  return closeChunk(ctx, encoder, path, id);
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

/** Finish a chunk: known ids are dropped (dedup), new ones go to the upload queue. */
async function closeChunk(ctx: StoreContext, encoder: ChunkEncoder, path: string, key: Buffer): Promise<ChunkRef> {
  let chunk;
  try {
    chunk = await encoder.finish();
  } catch (err) {
    await dropChunk(ctx, encoder, path);
    throw err;
  }
  const id = key.toString('hex');
  const location: BlobLocation = {
    object: Layout.chunk(id),
    offset: chunk.headerLength,
    length: chunk.size - chunk.headerLength,
    rawLength: chunk.rawLength,
    codec: chunk.codec,
  };
  // add() refuses an id the repository has, or another worker stored while this one encoded it.
  if (!(await ctx.index.add(key, location))) {
    await freeTemp(ctx, path);
    return { id, ...((await ctx.index.lookup(key)) as BlobLocation) };
  }
  ctx.onAdded(chunk.size);
  // The reserve was for the largest chunk; now that the size is known, the rest is free for others.
  ctx.budget.release(ctx.chunkReserve - chunk.size);
  ctx.uploader.submit(location.object, path, chunk.size, chunk.size);
  return { id, ...location };
}
