import type { ByteString } from '../repo/tree/names.js';

/** One verified small file of a batch: where it goes, its metadata, and where its bytes are in the batch. */
export interface BatchFile {
  dir: ByteString;
  path: ByteString;
  name: ByteString;
  mode: number;
  uid: number;
  gid: number;
  mtime: string;
  offset: number;
  length: number;
}

/** Main thread → write thread: files whose bytes are in `buffer` (transferred, not copied). */
export interface WriteBatch {
  id: number;
  buffer: ArrayBuffer;
  files: BatchFile[];
}

/** Write thread → main thread: the batch is written, or the first file that failed and why (the files after it are not written). */
export type WriteReply = { id: number } | { id: number; error: { message: string; code?: string; path?: string; detail?: string } };
