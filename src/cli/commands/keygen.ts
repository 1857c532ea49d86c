import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { generateKeyPair } from '../../crypto/keys.js';
import { ConfigError, describeError } from '../../errors.js';
import { readSecretFile, required, type CommandContext } from '../context.js';

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(path, text, { mode, flag: 'wx' });
  } catch (err) {
    const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
    throw new ConfigError(exists ? `${path} already exists; refusing to overwrite a key` : `cannot write ${path}: ${describeError(err)}`);
  }
}

/** `keygen --out DIR/owner`: an OpenPGP v6 x25519 key pair for restores. */
export async function keygen(ctx: CommandContext): Promise<number> {
  const out = required(ctx.config, 'out', 'keygen');
  const passphraseFile = ctx.config.get('passphraseFile');
  const passphrase = passphraseFile ? await readSecretFile(passphraseFile, '--passphrase-file') : undefined;
  await mkdir(dirname(out), { recursive: true });
  const pair = await generateKeyPair(basename(out), passphrase);
  await writeNew(`${out}.pub.asc`, pair.publicKey, 0o644);
  await writeNew(`${out}.key.asc`, pair.privateKey, 0o600);
  ctx.print(`wrote ${out}.pub.asc (give it to init as --recipient) and ${out}.key.asc (keep it offline: it decrypts every backup)`);
  ctx.print(`fingerprint ${pair.fingerprint}${passphrase ? '' : '; the private key has no passphrase'}`);
  return 0;
}
