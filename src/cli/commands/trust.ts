import { readPrivateKey } from '../../crypto/keys.js';
import { trustRepository } from '../../repo/keyring.js';
import { readSecretFile, readTextFile, targetFromConfig, type CommandContext } from '../context.js';
import { ConfigError } from '../../errors.js';

/**
 * `trust --key OWNER_KEY`: sign a repository made without --key (or add a recipient's signature), so
 * restores with that key verify it. Trust on first use: run it when you know the storage is untouched.
 */
export async function trust(ctx: CommandContext): Promise<number> {
  const keyFile = ctx.config.get('key');
  if (!keyFile) throw new ConfigError('trust needs --key OWNER_PRIVATE_KEY (a recipient of the repository)');
  const passphraseFile = ctx.config.get('passphraseFile');
  const passphrase = passphraseFile ? await readSecretFile(passphraseFile, '--passphrase-file') : undefined;
  const key = await readPrivateKey(await readTextFile(keyFile, '--key'), passphrase, `--key ${keyFile}`);
  const target = await targetFromConfig(ctx);
  try {
    const config = await trustRepository(target, key);
    ctx.print(`signed repository ${config.id} at ${target.description} (created ${config.created}, recipients ${config.encryption.recipients.map((r) => r.fingerprint).join(', ')}) with key ${key.getFingerprint()}`);
    return 0;
  } finally {
    await target.close();
  }
}
