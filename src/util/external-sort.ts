import { open, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Strings sorted in memory at once; more are sorted on disk in runs of this many. */
const IN_MEMORY = 100_000;
/** Runs merged at once; more are merged in passes first, so the read buffers (16 KiB a run) stay bounded however many runs there are. */
const FAN_IN = 16;

/**
 * Sort byte strings (one JavaScript char per byte, so `<` compares bytes) of any number in bounded
 * memory: runs of IN_MEMORY are sorted in memory, written to `tempDir` length-prefixed (a string may
 * hold any byte), and merged, at most FAN_IN at a time. Strings must be shorter than 4 GiB.
 */
export async function* sortStrings(source: AsyncIterable<string> | Iterable<string>, tempDir: string, inMemory = IN_MEMORY): AsyncGenerator<string> {
  // Every run file made, until it is merged away, so an error or an early stop removes them all.
  const files = new Set<string>();
  const runs: string[] = [];
  const addRun = async (items: AsyncIterable<string> | Iterable<string>) => {
    const path = join(tempDir, `sort-${randomBytes(8).toString('hex')}`);
    files.add(path);
    await writeRun(items, path);
    runs.push(path);
  };
  let items: string[] = [];
  try {
    for await (const s of source) {
      items.push(s);
      if (items.length >= inMemory) {
        await addRun(items.sort());
        items = [];
      }
    }
    items.sort();
    if (runs.length === 0) {
      yield* items;
      return;
    }
    if (items.length) await addRun(items);
    items = [];
    while (runs.length > FAN_IN) {
      const group = runs.splice(0, FAN_IN);
      await addRun(mergeRuns(group));
      for (const run of group) {
        files.delete(run);
        await rm(run, { force: true });
      }
    }
    yield* mergeRuns(runs);
  } finally {
    for (const file of files) await rm(file, { force: true });
  }
}

/** Bytes gathered before a write: one buffer, filled in place, so a run costs no object per string. */
const WRITE_BUFFER = 256 * 1024;

async function writeRun(items: AsyncIterable<string> | Iterable<string>, path: string): Promise<void> {
  const handle = await open(path, 'wx');
  let buf = Buffer.allocUnsafe(WRITE_BUFFER);
  let used = 0;
  const flush = async (): Promise<void> => {
    for (let done = 0; done < used; ) done += (await handle.write(buf, done, used - done)).bytesWritten;
    used = 0;
  };
  try {
    for await (const item of items) {
      if (used + 4 + item.length > buf.length) {
        await flush();
        if (4 + item.length > buf.length) buf = Buffer.allocUnsafe(4 + item.length);
      }
      buf.writeUInt32BE(item.length, used);
      used += 4 + buf.write(item, used + 4, 'latin1');
    }
    await flush();
    // Clean pages can be reclaimed under a memory limit; dirty ones count (docs/ARCHITECTURE.md "Memory does not grow with the data").
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Bytes read from a run at once. */
const READ_BUFFER = 16 * 1024;

/** The strings of one run file, in order, read into one buffer (grown only for a longer string). */
async function* readRun(path: string): AsyncGenerator<string> {
  const handle = await open(path, 'r');
  let buf = Buffer.allocUnsafe(READ_BUFFER);
  let filled = 0;
  try {
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, position);
      position += bytesRead;
      filled += bytesRead;
      let at = 0;
      while (at + 4 <= filled) {
        const length = buf.readUInt32BE(at);
        if (at + 4 + length > filled) break;
        yield buf.toString('latin1', at + 4, at + 4 + length);
        at += 4 + length;
      }
      if (bytesRead === 0) {
        if (at !== filled) throw new Error(`${path}: sort run ends inside a string`);
        return;
      }
      // Keep the partial string at the front; grow the buffer if it alone fills it.
      buf.copy(buf, 0, at, filled);
      filled -= at;
      if (filled >= 4 && 4 + buf.readUInt32BE(0) > buf.length) {
        const grown = Buffer.allocUnsafe(4 + buf.readUInt32BE(0));
        buf.copy(grown, 0, 0, filled);
        buf = grown;
      }
    }
  } finally {
    await handle.close();
  }
}

/** K-way merge of sorted runs (FAN_IN at most). */
async function* mergeRuns(paths: string[]): AsyncGenerator<string> {
  const heads: { it: AsyncGenerator<string>; value: string }[] = [];
  try {
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
  } finally {
    // A reader that stopped early closes the run files it had open.
    for (const head of heads) await head.it.return(undefined);
  }
}
