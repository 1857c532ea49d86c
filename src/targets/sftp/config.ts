import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { ConfigError, describeError } from '../../errors.js';
import type { TargetOptions } from '../open.js';
import { allChecks, fingerprintCheck, knownHostsCheck, type HostKeyCheck } from './known-hosts.js';

/** Everything the SFTP target needs, with key material already read and checked. */
export interface SftpConfig {
  host: string;
  port: number;
  user: string;
  /** Absolute folder of the repository on the server. */
  path: string;
  privateKey: Buffer;
  passphrase?: string;
  hostKey: HostKeyCheck;
  /** Milliseconds to connect and finish the SSH handshake. */
  connectTimeoutMs: number;
  /** Bytes per SFTP write request of an upload, and how many are in flight (memory = their product). */
  writeChunkSize: number;
  writeConcurrency: number;
  /** Bytes per SFTP read request of a download, and how many are in flight. */
  readChunkSize: number;
  readConcurrency: number;
}

/**
 * Defaults measured on loopback; each direction keeps at most 2 MiB in flight. Writes use OpenSSH's largest
 * request (limits@openssh.com: 256 KiB packets less 1 KiB): a 2 GiB backup took 21-23 s instead of 24-25.5 s
 * with 64 KiB requests (fewer requests, file reads and allocations). ssh2 splits them for smaller servers.
 */
export const SFTP_DEFAULTS = {
  connectTimeoutMs: 20_000,
  writeChunkSize: 255 * 1024,
  writeConcurrency: 8,
  readChunkSize: 64 * 1024,
  readConcurrency: 32,
};

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

async function readOption(file: string, flag: string, env: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ConfigError(`cannot read ${flag} (${env}) ${file}: ${describeError(err)}`);
  }
}

/** The SFTP target's configuration for `sftp://USER@HOST:PORT/PATH` and the sftp* options; says which flag is missing. */
export async function sftpConfig(
  location: { user: string | undefined; host: string; port: number; path: string },
  options: TargetOptions,
): Promise<SftpConfig> {
  if (options.sftpKey === '') throw new ConfigError('SFTP needs a private key: set --sftp-key FILE (KBRACKUP_SFTP_KEY)');
  if (options.sftpKnownHosts === '' && options.sftpHostFingerprint === '') {
    throw new ConfigError(
      "SFTP needs the server's host key: set --sftp-known-hosts FILE (KBRACKUP_SFTP_KNOWN_HOSTS) or --sftp-host-fingerprint SHA256:... (KBRACKUP_SFTP_HOST_FINGERPRINT)",
    );
  }
  const privateKey = await readOption(options.sftpKey, '--sftp-key', 'KBRACKUP_SFTP_KEY');
  const passphrase =
    options.sftpKeyPassphraseFile === ''
      ? undefined
      : (await readOption(options.sftpKeyPassphraseFile, '--sftp-key-passphrase-file', 'KBRACKUP_SFTP_KEY_PASSPHRASE_FILE')).toString('utf8').replace(/\r?\n$/, '');
  // Loaded here, not at module load, so runs on other targets never pay for ssh2.
  const { default: ssh2 } = await import('ssh2');
  const parsed = ssh2.utils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error) {
    const hint = /passphrase/i.test(parsed.message)
      ? passphrase === undefined
        ? 'it is encrypted; set --sftp-key-passphrase-file FILE (KBRACKUP_SFTP_KEY_PASSPHRASE_FILE)'
        : 'the passphrase from --sftp-key-passphrase-file does not decrypt it'
      : parsed.message;
    throw new ConfigError(`--sftp-key ${options.sftpKey}: ${hint}`);
  }
  const checks: HostKeyCheck[] = [];
  if (options.sftpKnownHosts !== '') {
    const text = (await readOption(options.sftpKnownHosts, '--sftp-known-hosts', 'KBRACKUP_SFTP_KNOWN_HOSTS')).toString('utf8');
    checks.push(knownHostsCheck(text, options.sftpKnownHosts, location.host, location.port));
  }
  if (options.sftpHostFingerprint !== '') {
    const pinned = options.sftpHostFingerprint.split(',').map((fp) => fp.trim());
    const bad = pinned.find((fp) => !FINGERPRINT.test(fp));
    if (bad !== undefined) {
      throw new ConfigError(`--sftp-host-fingerprint (KBRACKUP_SFTP_HOST_FINGERPRINT) "${bad}" is not a SHA256:... fingerprint as printed by ssh-keygen -lf`);
    }
    checks.push(fingerprintCheck(pinned, location.host, location.port));
  }
  return {
    host: location.host,
    port: location.port,
    user: location.user ?? userInfo().username,
    path: location.path.replace(/\/+$/, '') || '/',
    privateKey,
    passphrase,
    hostKey: allChecks(checks),
    ...SFTP_DEFAULTS,
  };
}
