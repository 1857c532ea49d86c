/** RFC 9580 5.13.2 SEIPDv2 parameters shared by our writer (seipd.ts) and reader (seipd-decrypt.ts). */
export const SEIPD_VERSION = 2;
export const CIPHER_AES256 = 9;
export const AEAD_GCM = 3;
/** GCM authentication tag bytes. */
export const TAG_LENGTH = 16;
/** AES-256 key bytes. */
export const KEY_LENGTH = 32;
/** GCM nonce bytes: derived IV prefix ‖ 8-byte big-endian chunk index. */
export const NONCE_LENGTH = 12;
export const SALT_LENGTH = 32;
