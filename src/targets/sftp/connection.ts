import { connect as netConnect, type Socket } from 'node:net';
import SftpClient from 'ssh2-sftp-client';
import type { SFTPWrapper } from 'ssh2';
import { TargetError, describeError } from '../../errors.js';
import type { SftpConfig } from './config.js';

const KEEPALIVE_MS = 15_000;

/** A callback-style ssh2 call. */
export type SftpCall<T> = (sftp: SFTPWrapper, cb: (err: Error | undefined | null, value: T) => void) => void;

/** A TCP connection with Nagle's algorithm off: SFTP's small request packets otherwise stall (~100x slower). */
function openSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * One authenticated SSH connection with its SFTP channel. Every call fails when the connection ends,
 * because ssh2 leaves some callbacks (e.g. fastPut's cleanup) unanswered forever when the socket dies.
 */
export class SftpConnection {
  private ended = false;
  /** Rejecters of the calls in flight; a set rather than a race against one long-lived promise, which would keep every result alive. */
  private readonly inFlight = new Set<(err: Error) => void>();

  private constructor(
    private readonly client: SftpClient,
    readonly sftp: SFTPWrapper,
  ) {}

  /** Connects, checks the host key and logs in; refusals are permanent, network trouble transient. */
  static async open(config: SftpConfig, description: string): Promise<SftpConnection> {
    const { host, port, user } = config;
    let socket: Socket;
    try {
      socket = await openSocket(host, port, config.connectTimeoutMs);
    } catch (err) {
      throw new TargetError(description, undefined, `cannot connect to ${host}:${port}: ${describeError(err)}`, { transient: true, cause: err });
    }
    let refusal: string | undefined;
    // The wrapper's default event callbacks print to the console; ending is handled through `lost` instead.
    const quiet = (): void => undefined;
    const client = new SftpClient('kbrackup', { error: quiet, end: quiet, close: quiet });
    try {
      const sftp = await client.connect({
        sock: socket,
        username: user,
        privateKey: config.privateKey,
        passphrase: config.passphrase,
        readyTimeout: config.connectTimeoutMs,
        keepaliveInterval: KEEPALIVE_MS,
        keepaliveCountMax: 4,
        algorithms: config.hostKey.algorithms ? { serverHostKey: config.hostKey.algorithms as never } : undefined,
        hostVerifier: (key: Buffer) => {
          const verdict = config.hostKey.check(key);
          if (!verdict.ok) refusal = verdict.reason;
          return verdict.ok;
        },
      });
      const connection = new SftpConnection(client, sftp);
      const onEnd = (): void => connection.lose();
      client.on('close', onEnd);
      client.on('end', onEnd);
      sftp.on('close', onEnd);
      return connection;
    } catch (err) {
      socket.destroy();
      if (refusal !== undefined) throw new TargetError(description, undefined, refusal, { cause: err });
      const message = describeError(err);
      if (/authentication methods failed/i.test(message)) {
        throw new TargetError(description, undefined, `the server refused the key from --sftp-key for user "${user}"; add its public key to the user's authorized_keys`, { cause: err });
      }
      throw new TargetError(description, undefined, `SSH connection to ${host}:${port} failed: ${message.replace(/^(\w+: )+/, '')}`, { transient: true, cause: err });
    }
  }

  /** False once the connection has ended; a new one must be opened. */
  get usable(): boolean {
    return !this.ended;
  }

  private lose(): void {
    this.ended = true;
    for (const fail of this.inFlight) fail(new Error('the SSH connection was lost'));
  }

  /** Runs one ssh2 SFTP call as a promise; rejects if it throws (e.g. an unsupported extension) or the connection ends first. */
  call<T = void>(fn: SftpCall<T>): Promise<T> {
    if (this.ended) return Promise.reject(new Error('the SSH connection was lost'));
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error): void => {
        this.inFlight.delete(fail);
        reject(err);
      };
      this.inFlight.add(fail);
      try {
        fn(this.sftp, (err, value) => {
          this.inFlight.delete(fail);
          if (err) reject(err);
          else resolve(value);
        });
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  /** Closes the connection; calls still in flight fail. */
  async end(): Promise<void> {
    this.ended = true;
    await this.client.end().catch(() => undefined);
  }
}
