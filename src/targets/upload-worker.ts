import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { TargetError, describeError } from '../errors.js';
import { openBackend } from './open.js';
import type { Location } from './location.js';
import type { UploadFailure, UploadReply, UploadRequest, WorkerTargetOptions } from './upload-protocol.js';

// Entry of the upload thread (upload-thread.ts): a connection of its own, used only for file puts.
const port = parentPort as MessagePort;
const { location, options } = workerData as { location: Location; options: WorkerTargetOptions };
const target = await openBackend(location, options);

function failure(err: unknown, name: string): UploadFailure {
  if (err instanceof TargetError) return { target: err.target, object: err.object, detail: err.detail, transient: err.transient };
  return { target: target.description, object: name, detail: describeError(err), transient: false };
}

port.on('message', (m: UploadRequest) => {
  if (m.kind === 'close') {
    // Closing the port ends the thread once the connection is gone.
    void target.close().finally(() => port.close());
    return;
  }
  target.put(m.name, { file: m.file, size: m.size }).then(
    () => port.postMessage({ id: m.id } satisfies UploadReply),
    (err: unknown) => port.postMessage({ id: m.id, failure: failure(err, m.name) } satisfies UploadReply),
  );
});
