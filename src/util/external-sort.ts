import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Strings sorted in memory at once; more are sorted on disk in runs of this many. */
const IN_MEMORY = 100_000;

/**
 * Sort byte strings (one JavaScript char per byte, so `<` compares bytes) of any number in bounded
 * memory: runs of IN_MEMORY are sorted in memory, written to `tempDir` length-prefixed (a string may
 * hold any byte), and merged. Strings must be shorter than 4 GiB.
 */
export async function* sortStrings(source: AsyncIterable<string> | Iterable<string>, tempDir: string, inMemory = IN_MEMORY): AsyncGenerator<string> {
  const runs: string[] = [];
  let items: string[] = [];
  try {
    for await (const s of source) {
      items.push(s);
      if (items.length >= inMemory) {
        runs.push(await writeRun(items.sort(), tempDir));
        items = [];
      }
    }
    items.sort();
    if (runs.length === 0) {
      yield* items;
      return;
    }
    if (items.length) runs.push(await writeRun(items, tempDir));
    items = [];
    yield* mergeRuns(runs);
  } finally {
    for (const run of runs) await rm(run, { force: true });
  }
}

/** Bytes written to a run file at once. */
const WRITE_BUFFER = 256 * 1024;

async function writeRun(items: string[], tempDir: string): Promise<string> {
  const path = join(tempDir, `sort-${randomBytes(8).toString('hex')}`);
  const handle = await open(path, 'wx');
  // One buffer, filled and flushed: a Buffer object per string would be more garbage than the strings.
  const buf = Buffer.allocUnsafe(WRITE_BUFFER);
  let used = 0;
  const flush = async (): Promise<void> => {
    for (let done = 0; done < used; ) done += (await handle.write(buf, done, used - done)).bytesWritten;
    used = 0;
  };
  try {
    for (const item of items) {
      const length = Buffer.byteLength(item, 'latin1');
      if (used + 4 + length > buf.length) await flush();
      if (4 + length > buf.length) {
        await handle.write(Buffer.concat([Buffer.of(length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff), Buffer.from(item, 'latin1')]));
        continue;
      }
      buf.writeUInt32BE(length, used);
      buf.write(item, used + 4, 'latin1');
      used += 4 + length;
    }
    await flush();
    // Clean pages can be reclaimed under a memory limit; dirty ones count (docs/ARCHITECTURE.md "Memory does not grow with the data").
    await handle.datasync();
  } finally {
    await handle.close();
  }
  return path;
}

/** The strings of one run file, in order. */
async function* readRun(path: string): AsyncGenerator<string> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const piece of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    pending = pending.length ? Buffer.concat([pending, piece as Buffer]) : (piece as Buffer);
    let at = 0;
    while (at + 4 <= pending.length) {
      const length = pending.readUInt32BE(at);
      if (at + 4 + length > pending.length) break;
      yield pending.toString('latin1', at + 4, at + 4 + length);
      at += 4 + length;
    }
    pending = Buffer.from(pending.subarray(at));
  }
}

/** K-way merge of sorted runs (a few dozen at most). */
async function* mergeRuns(paths: string[]): AsyncGenerator<string> {
  const heads: { it: AsyncGenerator<string>; value: string }[] = [];
  for (const path of paths) {
    const it = readRun(path);
    const first = await it.next();
    if (!first.done) heads.push({ it, value: first.value });
  }
  while (heads.length > 0) {
    let min = 0;
    for (let i = 1; i < heads.length; i++) if (heads[i]!.value < heads[min]!.value) min = i;
    const head = heads[min]!;
    yield head.value;
    const next = await head.it.next();
    if (next.done) heads.splice(min, 1);
    else head.value = next.value;
  }
}
