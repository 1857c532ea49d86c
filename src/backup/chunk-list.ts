import { createReadStream } from 'node:fs';
import { appendFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chunkLine, type ChunkRef } from '../repo/tree.js';

/** Chunk lines kept in memory before spilling to disk: a 1 TiB file has a million chunks. */
const IN_MEMORY = 1024;

/** The chunk lines of one file, in order; spills to a temp file once large, so memory stays bounded. */
export class ChunkList {
  private lines: string[] = [];
  private spill: string | undefined;
  count = 0;

  constructor(private readonly tempDir: string) {}

  /** Append a chunk. */
  add(ref: ChunkRef): Promise<void> {
    return this.addLine(chunkLine(ref));
  }

  /** Append a chunk line as a tree holds it (reused from a previous tree without re-serialising). */
  async addLine(line: string): Promise<void> {
    this.lines.push(line);
    this.count++;
    if (this.lines.length >= IN_MEMORY) {
      this.spill ??= join(this.tempDir, `chunks-${randomBytes(8).toString('hex')}.jsonl`);
      await appendFile(this.spill, `${this.lines.join('\n')}\n`);
      this.lines = [];
    }
  }

  /** The lines in order, each without its newline. */
  async *read(): AsyncGenerator<string> {
    if (this.spill) yield* createInterface({ input: createReadStream(this.spill), crlfDelay: Infinity });
    yield* this.lines;
  }

  /** Remove the spill file. */
  async dispose(): Promise<void> {
    if (this.spill) await rm(this.spill, { force: true });
  }
}
