import type { SmallBatch, SmallRead } from './small-read.js';
import type { CutterSpec } from './spec.js';

/** Main thread -> chunk thread. A block is `length` bytes in slot `slot` of the stream's shared ring. */
export type ChunkRequest =
  | { stream: number; open: { key: Uint8Array; cutter: CutterSpec; ring: SharedArrayBuffer; slotSize: number } }
  | { stream: number; slot: number; length: number }
  | { stream: number; end: true }
  | { stream: number; small: { key: Uint8Array; batch: SmallBatch } };

/** Chunk thread -> main thread: where chunks end in a block and their ids, or the end of a file. */
export type ChunkReply =
  | { stream: number; cuts: number[]; ids: Uint8Array[] }
  | { stream: number; sha256: string; lastId?: Uint8Array }
  | { stream: number; buffer: ArrayBuffer; reads: SmallRead[] }
  | { stream: number; error: string };
