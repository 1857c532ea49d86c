/** Bytes of text gathered before it is handed on: one compressor write per ~64 KiB, not per line. */
const BATCH = 64 * 1024;

/** Join short strings into ~64 KiB pieces; each downstream write has a fixed cost. */
export async function* batchLines(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let pending: string[] = [];
  let size = 0;
  for await (const line of lines) {
    pending.push(line);
    size += line.length;
    if (size >= BATCH) {
      yield pending.join('');
      pending = [];
      size = 0;
    }
  }
  if (pending.length > 0) yield pending.join('');
}
