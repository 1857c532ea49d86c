import { parentPort, type MessagePort } from 'node:worker_threads';
import { RestoreWriteError } from '../errors.js';
import { writeVerifiedFile } from './files-writer.js';
import type { WriteBatch } from './write-protocol.js';
import { XattrWriter } from './xattrs.js';

// Entry of the write thread (small-writer.ts). Files with extended attributes are written on the main
// thread, which owns the warnings about them, so this writer never has attributes to warn about.
const port = parentPort as MessagePort;
const xattrs = new XattrWriter(() => undefined);
port.on('message', (batch: WriteBatch) => {
  try {
    for (const f of batch.files) writeVerifiedFile(f.dir, f.path, f, Buffer.from(batch.buffer, f.offset, f.length), xattrs);
    port.postMessage({ id: batch.id });
  } catch (err) {
    // Errors do not cross threads with their class: a RestoreWriteError goes as its parts, to be rebuilt.
    const e = err as NodeJS.ErrnoException;
    const parts = err instanceof RestoreWriteError ? { path: err.path, detail: err.detail } : {};
    port.postMessage({ id: batch.id, error: { message: e.message, ...(e.code ? { code: e.code } : {}), ...parts } });
  }
});
