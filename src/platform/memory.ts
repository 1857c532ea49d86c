/**
 * Two ways a process keeps inside a pod's memory limit that Node has no call for: writing files without
 * piling up dirty page cache, and giving freed large buffers back to the kernel. Both are advice: where
 * the addon is absent or the call is refused, files are written and memory is allocated as before.
 * Why they matter: docs/ARCHITECTURE.md "Memory does not grow with the data"; what they hold is
 * measured in docs/BENCHMARKS.md "Container memory at 64Mi".
 */
import { constants } from 'node:os';
import { native } from './addon.js';

/**
 * Start the writeback of `length` bytes of `fd` from `offset` (0: to the end of the file) and return
 * without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE). 0, or the negative errno; -ENOSYS
 * without the addon.
 */
export function startWriteback(fd: number, offset: number, length: number): number {
  return native ? native.startWriteback(fd, offset, length) : -constants.errno.ENOSYS;
}

/** Bytes written between two starts of writeback: a few syscalls per MiB at most, little dirty at once. */
const WRITE_BEHIND_WINDOW = 1024 * 1024;

/**
 * Starts the writeback of a file as it is written, a window at a time, so few of its pages are dirty
 * at any moment. Why: page cache counts against a pod's memory limit, and under cgroup v1 the kernel
 * does not hold a writer back by its dirty pages; they grow until reclaim finds little clean cache to
 * drop, and a pod with most of its memory in use is OOM-killed although a flush a moment later would
 * have freed them. Pages under writeback are clean within milliseconds, and reclaim waits for them.
 * For files written once, in order: temp files of a backup, restored files.
 */
export class WriteBehind {
  #from = 0;

  constructor(private readonly fd: number) {}

  /** The file's bytes up to `end` are written (completed writes, `end` never going back). */
  written(end: number): void {
    if (end - this.#from < WRITE_BEHIND_WINDOW) return;
    // An error (a file system that cannot, a closed descriptor) only means the pages stay dirty a while.
    startWriteback(this.fd, this.#from, end - this.#from);
    this.#from = end;
  }
}

/** Allocations from this size up get their own mapping under a memory limit (see `mmapLargeAllocations`). */
const MMAP_THRESHOLD = 128 * 1024;

/**
 * Serve large allocations (Buffers of 128 KiB and more: chunks, ciphertext, batches of small files) from
 * mappings of their own, freed to the kernel with them. glibc starts so, but raises the threshold to the
 * size of each large block freed, after which such blocks come from the heap, where freed ones stay
 * resident between live ones. Costs a page fault per page of each fresh large buffer, so only worth it
 * under a memory limit. True when applied (glibc); false where the C library or the addon is not there.
 */
export function mmapLargeAllocations(): boolean {
  return native?.mmapThreshold(MMAP_THRESHOLD) === 1;
}
