import type { TargetOptions } from './open.js';

/** Target options that can cross to the upload thread (callbacks and signals stay on the main thread). */
export type WorkerTargetOptions = Omit<TargetOptions, 'onRetry' | 'signal' | 'uploadThread'>;

/** Main thread to upload thread: store a file, or close the connection and end. */
export type UploadRequest = { kind: 'put'; id: number; name: string; file: string; size?: number } | { kind: 'close' };

/** What a TargetError carries, so the main thread can rebuild it and decide on a retry. */
export interface UploadFailure {
  target: string;
  object: string | undefined;
  detail: string;
  transient: boolean;
}

/** Upload thread to main thread: a put finished, or failed. */
export interface UploadReply {
  id: number;
  failure?: UploadFailure;
}
