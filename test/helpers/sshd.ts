import { execFile, spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stopChild, waitForLine } from './process.js';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
const SETPRIV = '/usr/bin/setpriv';

/** A running OpenSSH server for tests, with the files a client needs to reach it. */
export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** Private key authorised for `user`. */
  userKey: string;
  /** A second private key that the server does not accept. */
  otherKey: string;
  /** known_hosts file with the server's ed25519 key as `[127.0.0.1]:PORT`. */
  knownHosts: string;
  /** `SHA256:…` fingerprint of the server's ed25519 host key. */
  fingerprint: string;
  /** The host key's public line (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string;
  /** A scratch folder for remote repositories (the server runs on this machine). */
  dataDir: string;
  stop(): Promise<void>;
}

/** A port that was free a moment ago; sshd takes it next, and start() retries if someone else did. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function keygen(path: string, comment: string): Promise<void> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
}

/**
 * Starts Debian's openssh-server unprivileged on 127.0.0.1 with a fresh host key and user key.
 * Throws (so the test fails, never skips) when sshd is not installed.
 */
export async function startSshd(): Promise<Sshd> {
  try {
    await access(SSHD);
  } catch {
    throw new Error(`${SSHD} not found: install openssh-server (apt-get install openssh-server; scripts/test.sh does this)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'kbrackup-sshd-'));
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  // sshd refuses to start without its privilege separation directory.
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const userKey = join(dir, 'user_ed25519');
  const otherKey = join(dir, 'other_ed25519');
  await Promise.all([keygen(hostKey, 'kbrackup-test-host'), keygen(userKey, 'kbrackup-test-user'), keygen(otherKey, 'kbrackup-test-other')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${userKey}.pub`));
  const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]);
  const fingerprint = stdout.split(' ')[1] ?? '';
  const user = userInfo().username;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    await writeFile(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'UsePAM no',
        'StrictModes no',
        'Subsystem sftp internal-sftp',
        'LogLevel INFO',
        '',
      ].join('\n'),
    );
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    // setpriv makes the kernel stop sshd when this process dies, so a killed test run leaves no server behind.
    const child = spawn(SETPRIV, ['--pdeathsig', 'TERM', SSHD, '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await waitForLine(child, 'stderr', /Server listening on 127\.0\.0\.1 port/, 'sshd');
    } catch (err) {
      await stopChild(child);
      if (attempt < 3) continue;
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    child.stderr?.resume();
    return {
      host: '127.0.0.1',
      port,
      user,
      userKey,
      otherKey,
      knownHosts,
      fingerprint,
      hostPublicKey,
      dataDir,
      async stop() {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
