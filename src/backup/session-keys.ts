import { sealSessionKey, type Sealing } from '../crypto/envelope.js';
import { newSessionKey, type SessionKey } from '../crypto/seipd.js';

/** A session key and the key packets that wrap it, which start every object encrypted under it. */
export interface KeyedHeader {
  sessionKey: SessionKey;
  header: Buffer;
}

/** Objects sharing one session key before a new one is made. */
const ROTATE_EVERY = 1024;

/**
 * Hands out session keys for content objects. Wrapping a key costs ~1.7 ms (x25519 per recipient), as
 * much as encrypting a 1 MiB chunk, so a key serves many objects; each SEIPDv2 packet still gets its own
 * message key from a fresh random salt (RFC 9580 5.13.2), so sharing it is safe.
 */
export class SessionKeys {
  private current: Promise<KeyedHeader> | undefined;
  private uses = 0;

  constructor(private readonly sealing: Sealing) {}

  /** The key for the next object. */
  async next(): Promise<KeyedHeader> {
    if (this.current === undefined || this.uses >= ROTATE_EVERY) {
      const sessionKey = newSessionKey();
      this.current = sealSessionKey(sessionKey, this.sealing).then((header) => ({ sessionKey, header }));
      this.uses = 0;
    }
    this.uses++;
    return this.current;
  }
}
