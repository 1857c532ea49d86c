import { createHash, createHmac, randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import type { Cutter } from '../chunker/cutter.js';
import { chooseCodec } from '../compress/codec.js';
import { Layout } from '../repo/layout.js';
import type { BlobLocation } from '../repo/tree.js';
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
  newCutter: () => Cutter;
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

/** Read size for large files: big enough for few syscalls, small enough for many workers in 64 MiB. */
const READ_SIZE = 256 * 1024;

/** Store a file's content; small files go into packs, large ones are cut into chunk objects. */
export async function storeFile(ctx: StoreContext, path: string, stat: BigIntStats): Promise<StoredFile> {
  const handle = await open(path, 'r');
  try {
    const size = Number(stat.size);
    if (size < ctx.smallFile) {
      const small = await storeSmall(ctx, handle, size);
      if (small) return small;
    }
    return await storeLarge(ctx, handle);
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
      location = await ctx.packer.add(data, chooseCodec(data));
      await ctx.index.add(id, location);
      ctx.onAdded(location.length);
    }
    await chunks.add({ id: id.toString('hex'), ...location });
  }
  return { size: got, sha256: createHash('sha256').update(data).digest('hex'), chunks };
}

async function storeLarge(ctx: StoreContext, handle: FileHandle): Promise<StoredFile> {
  const cutter = ctx.newCutter();
  const fileHash = createHash('sha256');
  const chunks = new ChunkList(ctx.tempDir);
  let open: { encoder: ChunkEncoder; path: string } | undefined;
  let pos = 0;
  try {
    for (;;) {
      ctx.signal.throwIfAborted();
      ctx.uploader.check();
      const buf = Buffer.allocUnsafe(READ_SIZE);
      const { bytesRead } = await handle.read(buf, 0, READ_SIZE, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      ctx.onRead(bytesRead);
      let data = buf.subarray(0, bytesRead);
      fileHash.update(data);
      while (data.length > 0) {
        const { consumed, boundary } = cutter.update(data);
        open ??= await openChunk(ctx);
        await open.encoder.write(data.subarray(0, consumed));
        if (boundary) {
          await chunks.add(await closeChunk(ctx, open.encoder, open.path));
          open = undefined;
        }
        data = data.subarray(consumed);
      }
    }
    if (open) {
      await chunks.add(await closeChunk(ctx, open.encoder, open.path));
      open = undefined;
    }
  } catch (err) {
    if (open) {
      await open.encoder.abort();
      await rm(open.path, { force: true });
      ctx.budget.release(ctx.chunkReserve);
    }
    await chunks.dispose();
    throw err;
  }
  return { size: pos, sha256: fileHash.digest('hex'), chunks };
}

async function openChunk(ctx: StoreContext): Promise<{ encoder: ChunkEncoder; path: string }> {
  await ctx.budget.reserve(ctx.chunkReserve);
  const path = join(ctx.tempDir, `chunk-${randomBytes(12).toString('hex')}`);
  return { encoder: new ChunkEncoder(path, await ctx.keys.next(), ctx.idKey), path };
}

/** Finish a chunk: known ids are dropped (dedup), new ones go to the upload queue. */
async function closeChunk(ctx: StoreContext, encoder: ChunkEncoder, path: string): Promise<BlobLocation & { id: string }> {
  const chunk = await encoder.finish();
  const id = chunk.id.toString('hex');
  const known = await ctx.index.lookup(chunk.id);
  if (known) {
    await rm(path, { force: true });
    ctx.budget.release(ctx.chunkReserve);
    return { id, ...known };
  }
  const location: BlobLocation = {
    object: Layout.chunk(id),
    offset: chunk.headerLength,
    length: chunk.size - chunk.headerLength,
    rawLength: chunk.rawLength,
    codec: chunk.codec,
  };
  await ctx.index.add(chunk.id, location);
  ctx.onAdded(chunk.size);
  ctx.uploader.submit(location.object, path, chunk.size, ctx.chunkReserve);
  return { id, ...location };
}
