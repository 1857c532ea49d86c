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

/** What the write thread sets on a finished file (never extended attributes: those files stay on the main thread). */
export type ThreadFileMeta = Pick<BatchFile, 'name' | 'mode' | 'uid' | 'gid' | 'mtime'>;

/**
 * Main thread → write thread. `batch`: small files whose bytes are in `buffer` (transferred, not
 * copied). The others are the steps of one large file, `file` naming it: `open` its temp file, `data`
 * (consecutive bytes from `at`, in a slot of the ring shared at the thread's start), `end` (answered with the SHA-256 of every byte), then `commit` (size,
 * metadata, rename) once the main thread checked that hash, or `abort` (temp file removed).
 */
export type WriteOp =
  | { batch: { buffer: ArrayBuffer; files: BatchFile[] } }
  | { open: { file: number; dir: ByteString; name: ByteString; hashed: boolean } }
  | { data: { file: number; at: number; slot: number; length: number } }
  | { end: { file: number } }
  | { commit: { file: number; size: number; path: ByteString; meta: ThreadFileMeta } }
  | { abort: { file: number } };

/** A request as sent: the operation and the id its reply carries. */
export type WriteRequest = WriteOp & { id: number };

/** How a failure crosses the thread boundary: a RestoreWriteError as its parts, anything else as message and code. */
export interface WriteFailure {
  message: string;
  code?: string;
  path?: string;
  detail?: string;
}

/** Write thread → main thread: done (an `end` with its hash), or why not (a batch stops at its first failed file). */
export type WriteReply = { id: number; sha256?: string } | { id: number; error: WriteFailure };
