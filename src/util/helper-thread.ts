import type { Worker } from 'node:worker_threads';

/** Stop a helper thread for good: its exit is no longer a failure to report. */
export async function stopThread(worker: Worker | undefined): Promise<void> {
  worker?.removeAllListeners('exit');
  await worker?.terminate();
}

/**
 * Keep the process alive exactly while a helper thread has work: when the main thread waits only for
 * the thread's answer, an unreferenced thread let the event loop run empty (Node 24 exited 13 in the
 * middle of a backup). Idle, it must not hold the process.
 */
export function holdWhileBusy(worker: Worker | undefined, busy: boolean): void {
  if (busy) worker?.ref();
  else worker?.unref();
}
