import { stat } from 'node:fs/promises';
import { DEFAULT_CHUNKER_PARAMS, validateChunkerParams } from '../../chunker/fastcdc.js';
import { parseSize } from '../../config/sizes.js';
import { ConfigError } from '../../errors.js';
import { writeCredentials } from '../../repo/credentials.js';
import { initRepository } from '../../repo/repository.js';
import { readSecretFile, readTextFile, required, targetFromConfig, type CommandContext } from '../context.js';

/** `init`: create a repository for recipients' public keys (or a passphrase) and write backup credentials. */
export async function init(ctx: CommandContext): Promise<number> {
  const { config } = ctx;
  const recipientFiles = config.get('recipient');
  const passphraseFile = config.get('passphraseFile');
  const passphrase = passphraseFile ? await readSecretFile(passphraseFile, '--passphrase-file') : undefined;
  const credentialsOut = recipientFiles.length > 0 ? required(config, 'credentialsOut', 'init with --recipient') : undefined;
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
  const target = await targetFromConfig(ctx);
  try {
    const { config: repo, credentials } = await initRepository(target, {
      recipients,
      passphrase,
      chunker: algorithm === 'fixed' ? { algorithm, size: chunkSize } : { algorithm, min: chunkSize / 2, avg: chunkSize, max: chunkSize * 8 },
      packSize,
      smallFile,
    });
    if (credentials && credentialsOut) await writeCredentials(credentialsOut, credentials);
    ctx.print(`created kbrackup repository ${repo.id} at ${target.description}`);
    if (credentialsOut) ctx.print(`backup credentials written to ${credentialsOut} (a backup job needs it; it cannot decrypt backed-up files)`);
    return 0;
  } finally {
    await target.close();
  }
}
