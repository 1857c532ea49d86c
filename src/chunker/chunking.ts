import { createHash, createHmac, createSecretKey, type Hash, type Hmac } from 'node:crypto';
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js';
import type { Cutter } from './cutter.js';
import { readSmallFiles } from './small-read.js';
import { newCutter } from './spec.js';

/** One file being chunked: its cutter, the SHA-256 of all of it, the keyed hash of the current chunk. */
interface FileState {
  key: Uint8Array;
  ring: SharedArrayBuffer;
  slotSize: number;
  cutter: Cutter;
  file: Hash;
  id: Hmac;
  /** Bytes of the current chunk so far. */
  open: number;
}

/** Cut one block, hash it, and list the chunks that end in it; the block is not needed afterwards. */
function chunkBlock(s: FileState, block: Uint8Array): { cuts: number[]; ids: Uint8Array[] } {
  const cuts: number[] = [];
  const ids: Uint8Array[] = [];
  s.file.update(block);
  let at = 0;
  while (at < block.length) {
    const piece = block.subarray(at);
    const { consumed, boundary } = s.cutter.update(piece);
    s.id.update(piece.subarray(0, consumed));
    s.open += consumed;
    at += consumed;
    if (boundary) {
      cuts.push(at);
      ids.push(s.id.digest());
      s.id = createHmac('sha256', s.key);
      s.open = 0;
    }
  }
  return { cuts, ids };
}

/** The chunking work behind ChunkThread's messages, on the chunk thread or inline on the main thread. */
export class ChunkingService {
  private readonly files = new Map<number, FileState>();

  /** Answer one request (through `reply`, at once). */
  handle(m: ChunkRequest, reply: (message: ChunkReply, transfer?: ArrayBuffer[]) => void): void {
    try {
      if ('small' in m) {
        const { buffer, reads } = readSmallFiles(m.small.batch, createSecretKey(m.small.key));
        reply({ stream: m.stream, buffer, reads }, [buffer]);
        return;
      }
      if ('open' in m) {
        const { key, cutter, ring, slotSize } = m.open;
        this.files.set(m.stream, { key, ring, slotSize, cutter: newCutter(cutter), file: createHash('sha256'), id: createHmac('sha256', key), open: 0 });
        return;
      }
      const s = this.files.get(m.stream);
      if (s === undefined) return;
      if ('slot' in m) {
        reply({ stream: m.stream, ...chunkBlock(s, new Uint8Array(s.ring, m.slot * s.slotSize, m.length)) });
        return;
      }
      this.files.delete(m.stream);
      const sha256 = s.file.digest('hex');
      reply(s.open > 0 ? { stream: m.stream, sha256, lastId: s.id.digest() } : { stream: m.stream, sha256 });
    } catch (err) {
      this.files.delete(m.stream);
      reply({ stream: m.stream, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
