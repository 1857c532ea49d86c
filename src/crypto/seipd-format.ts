import { hkdfSync } from 'node:crypto';

/** RFC 9580 5.13.2 SEIPDv2 parameters shared by our writer (seipd.ts) and reader (seipd-decrypt.ts). */
export const SEIPD_VERSION = 2;
export const CIPHER_AES256 = 9;
export const AEAD_GCM = 3;
/** GCM authentication tag bytes. */
export const TAG_LENGTH = 16;
/** AES-256 key bytes. */
export const KEY_LENGTH = 32;
/** GCM nonce bytes: derived IV ‖ 8-byte big-endian chunk index. */
export const NONCE_LENGTH = 12;
const IV_LENGTH = NONCE_LENGTH - 8;
export const SALT_LENGTH = 32;

/** A packet's message key and nonce (IV set, chunk index zero), derived from the session key and salt. */
export function deriveMessageKey(sessionKey: Uint8Array, salt: Uint8Array, adata: Uint8Array): { key: Buffer; nonce: Buffer } {
  const derived = Buffer.from(hkdfSync('sha256', sessionKey, salt, adata, KEY_LENGTH + IV_LENGTH));
  const nonce = Buffer.alloc(NONCE_LENGTH);
  derived.copy(nonce, 0, KEY_LENGTH);
  return { key: derived.subarray(0, KEY_LENGTH), nonce };
}

/** Put an AEAD chunk's index into the nonce. */
export function setChunkIndex(nonce: Buffer, index: bigint): void {
  nonce.writeBigUInt64BE(index, NONCE_LENGTH - 8);
}
