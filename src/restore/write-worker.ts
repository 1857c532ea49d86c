import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { RestoreWriteError } from '../errors.js';
import { LargeFileBody, writeVerifiedFile } from './files-writer.js';
import type { WriteFailure, WriteRequest } from './write-protocol.js';
import { SLOT_BYTES } from './write-thread.js';
import { XattrWriter } from './xattrs.js';

// Entry of the write thread (write-thread.ts). Files with extended attributes are written on the main
// thread, which owns the warnings about them, so this writer never has attributes to warn about.
const port = parentPort as MessagePort;
const xattrs = new XattrWriter(() => undefined);
/** The ring large files' bytes come in (write-thread.ts). */
const ring = workerData as SharedArrayBuffer;
/** Large files being written, by the number the main thread gave them. */
const bodies = new Map<number, LargeFileBody>();

/** Carry out one request; returns an `end`'s SHA-256. */
function handle(m: WriteRequest): string | undefined {
  if ('batch' in m) {
    const { buffer, files } = m.batch;
    for (const f of files) writeVerifiedFile(f.dir, f.path, f, Buffer.from(buffer, f.offset, f.length), xattrs);
  } else if ('open' in m) {
    bodies.set(m.open.file, new LargeFileBody(m.open.dir, m.open.name, m.open.hashed));
  } else if ('data' in m) {
    bodies.get(m.data.file)?.write([Buffer.from(ring, m.data.slot * SLOT_BYTES, m.data.length)], m.data.at);
  } else if ('end' in m) {
    return bodies.get(m.end.file)?.digest();
  } else if ('commit' in m) {
    const body = bodies.get(m.commit.file);
    bodies.delete(m.commit.file);
    body?.commit(m.commit.size, m.commit.path, m.commit.meta, xattrs);
  } else {
    const body = bodies.get(m.abort.file);
    bodies.delete(m.abort.file);
    body?.abort();
  }
  return undefined;
}

port.on('message', (m: WriteRequest) => {
  try {
    const sha256 = handle(m);
    port.postMessage(sha256 === undefined ? { id: m.id } : { id: m.id, sha256 });
  } catch (err) {
    // Errors do not cross threads with their class: a RestoreWriteError goes as its parts, to be rebuilt.
    const e = err as NodeJS.ErrnoException;
    const parts = err instanceof RestoreWriteError ? { path: err.path, detail: err.detail } : {};
    const error: WriteFailure = { message: e.message, ...(e.code ? { code: e.code } : {}), ...parts };
    port.postMessage({ id: m.id, error });
  }
});
