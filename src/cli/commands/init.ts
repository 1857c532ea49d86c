import { stat } from 'node:fs/promises';
import { DEFAULT_CHUNKER_PARAMS, validateChunkerParams } from '../../chunker/fastcdc.js';
import { parseSize } from '../../util/sizes.js';
import { ConfigError } from '../../errors.js';
import { writeCredentials } from '../../repo/credentials.js';
import { initRepository } from '../../repo/keyring.js';
import { readPrivateKey } from '../../crypto/keys.js';
import { readSecretFile, readTextFile, required, targetFromConfig, type CommandContext } from '../context.js';

/** `init`: create a repository for the owner's key and other recipients (or a passphrase), signed with --key, and write backup credentials. */
export async function init(ctx: CommandContext): Promise<number> {
  const { config } = ctx;
  const recipientFiles = config.get('recipient');
  const passphraseFile = config.get('passphraseFile');
  const passphrase = passphraseFile ? await readSecretFile(passphraseFile, '--passphrase-file') : undefined;
  const keyFile = config.get('key');
  const credentialsOut = recipientFiles.length > 0 || keyFile ? required(config, 'credentialsOut', 'init with --key or --recipient') : undefined;
  const algorithm = config.get('chunker') as 'fastcdc' | 'fixed';
  const chunkSize = config.get('chunkSize') || (algorithm === 'fixed' ? 4 * 1024 * 1024 : DEFAULT_CHUNKER_PARAMS.avg);
  const smallFile = config.get('smallFile');
  const packSize = config.get('packSize');
  if (chunkSize < 64 * 1024 || chunkSize > 256 * 1024 * 1024) throw new ConfigError('--chunk-size must be between 64KiB and 256MiB');
  if (smallFile > Math.min(chunkSize, 4 * 1024 * 1024)) throw new ConfigError('--small-file must not exceed --chunk-size or 4MiB');
  if (algorithm === 'fastcdc') validateChunkerParams({ min: chunkSize / 2, avg: chunkSize, max: chunkSize * 8 });
  if (packSize < smallFile * 2 || packSize > (parseSize('1GiB') as number)) throw new ConfigError('--pack-size must be at least twice --small-file and at most 1GiB');
  if (credentialsOut && (await stat(credentialsOut).catch(() => undefined))) {
    throw new ConfigError(`--credentials-out ${credentialsOut} already exists; refusing to overwrite it`);
  }
  const recipients = [];
  for (const file of recipientFiles) recipients.push({ armored: await readTextFile(file, '--recipient'), source: `--recipient ${file}` });
  // With --key, the passphrase file (if any) unlocks the owner's key; without, it is the repository's passphrase.
  const signer = keyFile ? await readPrivateKey(await readTextFile(keyFile, '--key'), passphrase, `--key ${keyFile}`) : undefined;
  const target = await targetFromConfig(ctx);
  try {
    const { config: repo, credentials } = await initRepository(target, {
      recipients,
      signer,
      passphrase: signer ? undefined : passphrase,
      bundleSize: 256 * 1024,
      chunker: algorithm === 'fixed' ? { algorithm, size: chunkSize } : { algorithm, min: chunkSize / 2, avg: chunkSize, max: chunkSize * 8 },
      packSize,
      smallFile,
    });
    if (credentials && credentialsOut) await writeCredentials(credentialsOut, credentials);
    ctx.print(`created kbrackup repository ${repo.id} at ${target.description}`);
    if (credentialsOut) ctx.print(`backup credentials written to ${credentialsOut} (a backup job needs it; it cannot decrypt backed-up files)`);
    if (signer) ctx.print(`signed by ${signer.getFingerprint()}: restores with this key verify the repository`);
    else if (credentialsOut) ctx.print('not signed: restore refuses it until you run `kbrackup trust --repo … --key OWNER_KEY` once (docs/SECURITY.md)');
    return 0;
  } finally {
    await target.close();
  }
}
