import { open, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import { SAMPLE_BYTES, chooseCodec, compressor, type Codec } from '../compress/codec.js';
import { SeipdWriter } from '../crypto/seipd.js';
import { WriteBehind } from '../platform/index.js';
import { writeAll } from '../util/write-all.js';
import type { KeyedHeader } from './session-keys.js';

/** What an encoded chunk turned out to be. */
export interface EncodedChunk {
  codec: Codec;
  rawLength: number;
  /** Bytes of the temp file: key packets + blob (+ the tail, once finished). */
  size: number;
  headerLength: number;
}

/** Encrypted bytes gathered before one writev: few syscalls, bounded memory. */
const WRITE_BATCH = 1024 * 1024;

/**
 * Encodes one chunk as it streams by (the caller names it): codec chosen from its first bytes, then
 * (optional compression and) encryption straight into a temp file. Stored-as-is data takes a synchronous
 * path with no stream hops; only the sample and two write batches are ever buffered.
 */
export class ChunkEncoder {
  private rawLength = 0;
  private sample: Buffer | undefined = Buffer.allocUnsafe(SAMPLE_BYTES);
  private sampled = 0;
  private started = false;
  private codec: Codec = 'none';
  private writer: SeipdWriter | undefined;
  private readonly handle: Promise<FileHandle>;
  private batch: Buffer[] = [];
  private batched = 0;
  private size = 0;
  /** The one write in flight: encryption of the next batch overlaps it. */
  private writing: Promise<void> = Promise.resolve();
  private compressing: Transform | undefined;
  private draining: Promise<void> | undefined;
  private behind: WriteBehind | undefined;

  constructor(
    path: string,
    private readonly key: KeyedHeader,
  ) {
    // Opened while the first batch is encrypted: creating a file waits on the journal when uploads fsync.
    this.handle = open(path, 'wx');
    this.handle.catch(() => undefined);
  }

  /** Add the next bytes of the chunk; once this resolves nothing refers to `data`, so the caller may reuse it. */
  async write(data: Buffer): Promise<void> {
    this.rawLength += data.length;
    let rest = data;
    if (!this.started) {
      // The first bytes choose the codec; they are copied aside until there are enough of them.
      const n = Math.min(rest.length, SAMPLE_BYTES - this.sampled);
      rest.copy(this.sample as Buffer, this.sampled, 0, n);
      this.sampled += n;
      if (this.sampled < SAMPLE_BYTES) return;
      await this.start();
      rest = rest.subarray(n);
      if (rest.length === 0) return;
    }
    await this.encode(rest);
  }

  private async start(): Promise<void> {
    this.started = true;
    const sample = (this.sample as Buffer).subarray(0, this.sampled);
    this.sample = undefined;
    this.codec = chooseCodec(sample);
    // The literal packet's filename names the codec, so it is known only now.
    const writer = new SeipdWriter({ sessionKey: this.key.sessionKey, filename: this.codec });
    this.writer = writer;
    await this.emit([this.key.header]);
    if (this.codec === 'none') {
      await this.emit(writer.update(sample));
      return;
    }
    const compressing = compressor(this.codec);
    this.compressing = compressing;
    this.draining = (async () => {
      for await (const out of compressing as AsyncIterable<Buffer>) await this.emit(writer.update(out));
    })();
    this.draining.catch(() => undefined);
    await this.encode(sample);
  }

  private async encode(data: Buffer): Promise<void> {
    if (this.compressing === undefined) {
      await this.emit((this.writer as SeipdWriter).update(data));
      return;
    }
    // The compressor reads its input later, on the thread pool: it gets a copy, as the caller reuses `data`.
    if (!this.compressing.write(Buffer.from(data))) await Promise.race([once(this.compressing, 'drain'), this.draining]);
  }

  /** Queue encrypted bytes; once a batch is full (or when forced) write it behind the one in flight. */
  private async emit(parts: Buffer[], force = false): Promise<void> {
    for (const p of parts) {
      this.batch.push(p);
      this.batched += p.length;
    }
    if (!force && this.batched < WRITE_BATCH) return;
    const batch = this.batch;
    this.batch = [];
    this.batched = 0;
    await this.writing;
    this.writing = this.flush(batch);
    this.writing.catch(() => undefined);
  }

  private async flush(batch: Buffer[]): Promise<void> {
    const handle = await this.handle;
    // A write cut short (a full temp dir) is continued, so the real error (ENOSPC) is what surfaces.
    await writeAll(handle, batch, this.size);
    this.size += batch.reduce((n, b) => n + b.length, 0);
    // Dirty pages of temp files waiting for upload would count against a pod's memory limit, and under
    // cgroup v1 nothing writes them back in time (docs/ARCHITECTURE.md "Memory does not grow with the data").
    (this.behind ??= new WriteBehind(handle.fd)).written(this.size);
  }

  /**
   * End the chunk: waits for the temp file to be complete and tells what it holds. `tail` gives bytes
   * to append after the encrypted blob (the object's trailer), once its length is known.
   */
  async finish(tail: (chunk: EncodedChunk) => Buffer): Promise<EncodedChunk> {
    if (!this.started) await this.start();
    if (this.compressing) {
      this.compressing.end();
      await this.draining;
    }
    await this.emit((this.writer as SeipdWriter).final(), true);
    await this.writing;
    const chunk = { codec: this.codec, rawLength: this.rawLength, size: this.size, headerLength: this.key.header.length };
    await this.emit([tail(chunk)], true);
    await this.writing;
    await (await this.handle).close();
    return { ...chunk, size: this.size };
  }

  /** Abandon the chunk (on error or cancel); the caller removes the file. */
  async abort(): Promise<void> {
    this.compressing?.destroy();
    await this.writing.catch(() => undefined);
    await this.handle.then((h) => h.close()).catch(() => undefined);
  }
}
