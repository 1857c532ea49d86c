import { enums, type PartialConfig } from 'openpgp';

/**
 * The openpgp settings measured to stay fast and small (docs/ARCHITECTURE.md "Content objects and bundles"): v6 keys that prefer AES-GCM,
 * which Node runs natively (a key preferring OCB makes encryption run in JavaScript at a third of the speed).
 */
export const OPENPGP_CONFIG: PartialConfig = {
  v6Keys: true,
  aeadProtect: true,
  preferredAEADAlgorithm: enums.aead.gcm,
  preferredSymmetricAlgorithm: enums.symmetric.aes256,
  aeadChunkSizeByte: 12,
};

/** Argon2 at 2^14 KiB = 16 MiB per derivation: the default 64 MiB was OOM-killed inside a 64 MiB pod. */
export const PASSPHRASE_CONFIG: PartialConfig = {
  ...OPENPGP_CONFIG,
  s2kType: enums.s2k.argon2,
  s2kArgon2Params: { passes: 3, parallelism: 4, memoryExponent: 14 },
};

/**
 * For passwords that are themselves 256-bit random keys (derived from the repository key), a slow
 * S2K adds nothing: iterated+salted with the minimum count costs 0.5 ms instead of 64 MiB of Argon2.
 */
export const KEY_PASSWORD_CONFIG: PartialConfig = {
  ...OPENPGP_CONFIG,
  s2kType: enums.s2k.iterated,
  s2kIterationCountByte: 0,
};
