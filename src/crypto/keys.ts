import * as openpgp from 'openpgp';
import { ConfigError, IntegrityError, WrongKeyError, describeError } from '../errors.js';
import { OPENPGP_CONFIG } from './openpgp-config.js';

/** An armored OpenPGP key pair. */
export interface KeyPair {
  publicKey: string;
  privateKey: string;
  fingerprint: string;
}

/** Generate a v6 x25519 key pair that prefers AES-256/GCM, optionally protected by a passphrase. */
export async function generateKeyPair(name: string, passphrase?: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await openpgp.generateKey({
    type: 'curve25519',
    userIDs: [{ name }],
    ...(passphrase ? { passphrase } : {}),
    format: 'armored',
    config: OPENPGP_CONFIG,
  });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return { publicKey, privateKey, fingerprint: key.getFingerprint() };
}

/** Parse armored public key(s); `what` names the file in errors. */
export async function readPublicKeys(armored: string, what: string): Promise<openpgp.PublicKey[]> {
  let keys: openpgp.Key[];
  try {
    keys = await openpgp.readKeys({ armoredKeys: armored });
  } catch (err) {
    throw new ConfigError(`${what} is not an armored OpenPGP public key (${describeError(err)})`);
  }
  const out: openpgp.PublicKey[] = [];
  for (const key of keys) {
    const pub = key.isPrivate() ? key.toPublic() : key;
    try {
      await pub.getEncryptionKey(undefined, undefined, undefined, { ...openpgp.config, ...OPENPGP_CONFIG });
    } catch (err) {
      throw new ConfigError(`${what}: key ${pub.getFingerprint()} cannot encrypt (${describeError(err)}); use a key made by \`kbrackup keygen\``);
    }
    out.push(pub);
  }
  return out;
}

/** Parse an armored private key and unlock it with the passphrase when it is protected. */
export async function readPrivateKey(armored: string, passphrase: string | undefined, what: string): Promise<openpgp.PrivateKey> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armored });
  } catch (err) {
    throw new ConfigError(`${what} is not an armored OpenPGP private key (${describeError(err)}); pass the .key.asc file written by \`kbrackup keygen\``);
  }
  if (key.isDecrypted()) return key;
  if (passphrase === undefined) throw new WrongKeyError(`${what} is protected by a passphrase; pass --passphrase-file`);
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (err) {
    throw new WrongKeyError(`wrong passphrase for ${what}`, { cause: err });
  }
}

/** A detached OpenPGP signature (binary) by `key` over `data`. */
export async function signDetached(key: openpgp.PrivateKey, data: Uint8Array): Promise<Uint8Array> {
  const message = await openpgp.createMessage({ binary: data });
  return openpgp.sign({ message, signingKeys: key, detached: true, format: 'binary', config: OPENPGP_CONFIG });
}

/**
 * Whether `signature` (binary, detached) is a valid signature by `key` over `data`. A signature that
 * does not parse is damage (IntegrityError naming `object`); a wrong or other key's signature is false.
 */
export async function verifyDetached(key: openpgp.PublicKey, data: Uint8Array, signature: Uint8Array, object: string): Promise<boolean> {
  let parsed: openpgp.Signature;
  try {
    parsed = await openpgp.readSignature({ binarySignature: signature });
  } catch (err) {
    throw new IntegrityError(object, `is not an OpenPGP signature (${describeError(err)})`, { cause: err });
  }
  const message = await openpgp.createMessage({ binary: data });
  const result = await openpgp.verify({ message, signature: parsed, verificationKeys: key, expectSigned: false, config: OPENPGP_CONFIG });
  for (const s of result.signatures) {
    try {
      if (await s.verified) return true;
    } catch {
      // Another key's signature, or not over these bytes: try the next one.
    }
  }
  return false;
}
