import { createHmac } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { IntegrityError } from '../../errors.js';
import { decodeEntry, decodePart, type ContentPart, type TreeEntry } from './entry.js';

/**
 * The lines of a decrypted tree or list object, checked against its keyed hash. The AEAD layer already
 * proved the object was written under this name by a holder of the repository key; the hash check
 * catches a writer's bug. An object held in memory (the usual folder) is checked before its first line
 * is returned; a streamed one (a huge folder) at its end, which throws if the hash differs.
 */
async function* verifiedLines(plain: Buffer | Readable, treeIdKey: Buffer, id: string, object: string): AsyncGenerator<string> {
  const hmac = createHmac('sha256', treeIdKey);
  if (Buffer.isBuffer(plain)) {
    if (hmac.update(plain).digest('hex') !== id) throw new IntegrityError(object, 'does not hash to its name');
    const text = plain.toString('utf8');
    let at = 0;
    while (at < text.length) {
      const end = text.indexOf('\n', at);
      if (end < 0) throw new IntegrityError(object, 'ends inside a line');
      yield text.slice(at, end);
      at = end + 1;
    }
    return;
  }
  for await (const line of createInterface({ input: plain, crlfDelay: Infinity })) {
    hmac.update(`${line}\n`);
    yield line;
  }
  if (hmac.digest('hex') !== id) throw new IntegrityError(object, 'does not hash to its name');
}

/** The entries of a folder's tree object, in name order; names must be unique and sorted. */
export async function* treeEntries(plain: Buffer | Readable, treeIdKey: Buffer, id: string, object: string): AsyncGenerator<TreeEntry> {
  let last: string | undefined;
  let n = 0;
  for await (const line of verifiedLines(plain, treeIdKey, id, object)) {
    const entry = decodeEntry(line, object, ++n);
    if (last !== undefined && entry.name <= last) throw new IntegrityError(object, `line ${n}: entries are not in name order (duplicate or unsorted name)`);
    last = entry.name;
    yield entry;
  }
}

/** The parts of a long content list object: exactly `count` of them, adding up to the file's `size`. */
export async function* listParts(plain: Buffer | Readable, treeIdKey: Buffer, id: string, object: string, count: number, size: number): AsyncGenerator<ContentPart> {
  let n = 0;
  let total = 0;
  for await (const line of verifiedLines(plain, treeIdKey, id, object)) {
    n++;
    if (n > count) throw new IntegrityError(object, `holds more than the ${count} parts its file entry announces`);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new IntegrityError(object, `line ${n} is not JSON`);
    }
    const part = decodePart(value, object, `line ${n}`);
    total += 'id' in part ? part.length : part.hole;
    // Checked before the part is handed out: a reader never fetches a byte past the file's size.
    if (total > size) throw new IntegrityError(object, `line ${n}: its parts add up to more than the file's size of ${size} bytes`);
    yield part;
  }
  if (n !== count) throw new IntegrityError(object, `holds ${n} parts, but its file entry announces ${count}`);
  if (total !== size) throw new IntegrityError(object, `its parts add up to ${total} bytes, but the file's size is ${size}`);
}
