import * as openpgp from 'openpgp';
import { Readable } from 'node:stream';
import { IntegrityError, WrongKeyError, describeError } from '../errors.js';
import { KEY_PASSWORD_CONFIG, OPENPGP_CONFIG } from './openpgp-config.js';
import { PacketTag, parsePacketHeader } from './packets.js';
import { seipdDecryptor } from './seipd-decrypt.js';
import type { SessionKey } from './seipd.js';

/**
 * Who can open an object: the recipients' public keys (PKESK packets) and/or passwords (SKESK packets).
 * Passwords here are 256-bit keys derived from the repository key, never a person's passphrase.
 */
export interface Sealing {
  recipients: openpgp.PublicKey[];
  passwords: string[];
  /** A person's passphrase needs Argon2 (PASSPHRASE_CONFIG); derived keys use the cheap default. */
  passwordConfig?: openpgp.PartialConfig;
}

/** What the reader holds: private keys and/or passwords. */
export interface Unsealing {
  privateKeys: openpgp.PrivateKey[];
  passwords: string[];
}

/** Most bytes the key packets in front of an object's encrypted data may take (about 100 recipients). */
export const MAX_HEADER_LENGTH = 16 * 1024;

/** The key packets that start every stored object: the session key wrapped for every recipient and password. */
export async function sealSessionKey(sessionKey: SessionKey, sealing: Sealing): Promise<Buffer> {
  const wrap = async (to: { encryptionKeys: openpgp.PublicKey[] } | { passwords: string[] }, config: openpgp.PartialConfig) =>
    Buffer.from(await openpgp.encryptSessionKey({ data: sessionKey, algorithm: 'aes256', aeadAlgorithm: 'gcm', ...to, format: 'binary', config }));
  const parts: Buffer[] = [];
  if (sealing.recipients.length > 0) parts.push(await wrap({ encryptionKeys: sealing.recipients }, OPENPGP_CONFIG));
  if (sealing.passwords.length > 0) parts.push(await wrap({ passwords: sealing.passwords }, sealing.passwordConfig ?? KEY_PASSWORD_CONFIG));
  return Buffer.concat(parts);
}

/**
 * Where the key packets at the start of an object end (the offset of its first encrypted data packet),
 * or undefined when `start` is too short to tell. `start` may end right after the key packets.
 */
function findHeaderEnd(start: Uint8Array, object: string, complete: boolean): number | undefined {
  let pos = 0;
  for (;;) {
    // The first blob of a pack starts right after the key packets, so the bytes read may end there.
    if (complete && pos > 0 && pos === start.length) return pos;
    let info;
    try {
      info = parsePacketHeader(start, pos);
    } catch {
      throw new IntegrityError(object, 'damaged: its key packets are not OpenPGP');
    }
    if (info === undefined) {
      if (complete || start.length >= MAX_HEADER_LENGTH) throw new IntegrityError(object, 'damaged: no encrypted data packet in its first bytes');
      return undefined;
    }
    if (info.tag === PacketTag.seipd) return pos;
    if ((info.tag !== PacketTag.pkesk && info.tag !== PacketTag.skesk) || info.bodyLength === undefined) {
      throw new IntegrityError(object, `damaged: unexpected OpenPGP packet tag ${info.tag} in its header`);
    }
    pos += info.headerLength + info.bodyLength;
    if (!complete && pos >= start.length) return undefined;
  }
}

/** Length of the leading PKESK/SKESK packets of an object, given its first bytes (up to the first blob at most). */
export function headerLength(start: Uint8Array, object: string): number {
  return findHeaderEnd(start, object, true) as number;
}

/** Split a whole object's stream into its key packets and the encrypted data packet that follows. */
export async function splitHeader(stream: Readable, object: string): Promise<{ header: Buffer; rest: Readable }> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buf = Buffer.alloc(0);
  for (;;) {
    const end = findHeaderEnd(buf, object, false);
    if (end !== undefined) {
      const leftover = buf.subarray(end);
      const rest = Readable.from(
        (async function* () {
          yield leftover;
          for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
        })(),
        { objectMode: false },
      );
      rest.on('close', () => stream.destroy());
      return { header: buf.subarray(0, end), rest };
    }
    const next = await it.next();
    if (next.done) throw new IntegrityError(object, 'truncated: it ends inside its key packets');
    buf = Buffer.concat([buf, next.value]);
  }
}

/**
 * Recover an object's session key from its header packets. A key packet addressed to one of the given
 * keys that does not open is damage (IntegrityError); no packet for them at all is the wrong key, unless
 * the object is `sealedForUs` (its repository was verified to seal everything for these keys): then
 * that too is damage, or an object its backups did not write.
 */
export async function unsealSessionKey(header: Uint8Array, unsealing: Unsealing, object: string, sealedForUs = false): Promise<SessionKey> {
  let message;
  try {
    message = await openpgp.readMessage({ binaryMessage: header });
  } catch (err) {
    throw new IntegrityError(object, `damaged key packets (${describeError(err)})`, { cause: err });
  }
  // openpgp tries only passwords when given both, so each way in is tried on its own.
  const attempts: Partial<Parameters<typeof openpgp.decryptSessionKeys>[0]>[] = [];
  if (unsealing.privateKeys.length) attempts.push({ decryptionKeys: unsealing.privateKeys });
  if (unsealing.passwords.length) attempts.push({ passwords: unsealing.passwords });
  let last: unknown = new Error('no key or password given');
  for (const attempt of attempts) {
    try {
      const keys = await openpgp.decryptSessionKeys({ message, ...attempt, config: OPENPGP_CONFIG });
      if (keys[0]) return keys[0].data;
    } catch (err) {
      last = err;
    }
  }
  const ours = new Set(unsealing.privateKeys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex())));
  if (message.getEncryptionKeyIDs().some((id) => ours.has(id.toHex()))) {
    throw new IntegrityError(object, `damaged key packets: the packet for your key does not open (${describeError(last)})`, { cause: last });
  }
  if (sealedForUs) throw new IntegrityError(object, `damaged key packets: none opens with the key given, for which this repository seals every object (${describeError(last)})`, { cause: last });
  throw new WrongKeyError(`${object}: the key given cannot decrypt this repository's data (${describeError(last)})`, { cause: last });
}

/** Fingerprints (hex, lower case) of the keys an object's header packets are addressed to. */
export async function headerRecipients(header: Uint8Array, object: string): Promise<string[]> {
  let message;
  try {
    message = await openpgp.readMessage({ binaryMessage: header });
  } catch (err) {
    throw new IntegrityError(object, `damaged key packets (${describeError(err)})`, { cause: err });
  }
  return message.packets
    .filterByTag(openpgp.enums.packet.publicKeyEncryptedSessionKey)
    .map((p) => Buffer.from((p as unknown as { publicKeyFingerprint: Uint8Array | null }).publicKeyFingerprint ?? []).toString('hex'));
}

/** Decrypt one SEIPDv2 packet with a known session key; the result stream fails with IntegrityError on any tampering or truncation. */
export function decryptPacket(encrypted: Readable, sessionKey: SessionKey, object: string): Readable {
  // Our own decryptor rather than openpgp's: ~30 MB/s and much memory there (docs/ARCHITECTURE.md "Metadata objects").
  const plain = Readable.from(seipdDecryptor(sessionKey, object)(encrypted), { objectMode: false });
  // A reader that stops early must release the target's connection now, not when its next bytes arrive.
  plain.once('close', () => encrypted.destroy());
  return plain;
}
