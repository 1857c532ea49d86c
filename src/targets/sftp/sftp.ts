import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { FileEntryWithStats, Stats } from 'ssh2';
import { NotFoundError, TargetError, describeError } from '../../errors.js';
import { mapStreamErrors } from '../streams.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from '../target.js';
import type { SftpConfig } from './config.js';
import { SftpConnection } from './connection.js';
import { SFTP_STATUS, sftpError, sftpStatus } from './errors.js';
import { ReadAheadStream } from './read-ahead.js';
import { asBuffer } from '../../util/bytes.js';

/** Objects in flight carry this prefix so listings and readers never see half-written files. */
const TEMP_PREFIX = '.tmp-';

function isUnsupported(err: unknown): boolean {
  return sftpStatus(err) === SFTP_STATUS.unsupported || /does not support/i.test(describeError(err));
}

/**
 * A repository in a folder of an SFTP server (OpenSSH's internal-sftp or any SFTPv3 server). One SSH
 * connection is shared by all calls and re-opened after it drops; the host key must be known beforehand.
 */
export class SftpTarget implements Target {
  readonly description: string;
  private connection: Promise<SftpConnection> | undefined;
  private posixRename = true;

  constructor(private readonly config: SftpConfig) {
    const port = config.port === 22 ? '' : `:${config.port}`;
    this.description = `sftp://${config.user}@${config.host}${port}${config.path}`;
  }

  private path(name: string): string {
    return name === '' ? this.config.path : posix.join(this.config.path, name);
  }

  private fail(name: string | undefined, err: unknown): TargetError {
    return sftpError(this.description, name, err);
  }

  /** The shared connection, opened on first use and again after it was lost. */
  private async open(): Promise<SftpConnection> {
    for (;;) {
      const pending = this.connection;
      if (pending === undefined) {
        const attempt = SftpConnection.open(this.config, this.description);
        this.connection = attempt;
        attempt.catch(() => {
          if (this.connection === attempt) this.connection = undefined;
        });
        return attempt;
      }
      const current = await pending;
      if (current.usable) return current;
      if (this.connection === pending) this.connection = undefined;
    }
  }

  /** Creates the repository folder (and its parents) if needed; says why when it cannot. */
  async prepare(): Promise<void> {
    const conn = await this.open();
    try {
      await this.mkdirs(conn, this.config.path);
    } catch (err) {
      const cause = this.fail(undefined, err);
      throw new TargetError(this.description, undefined, `cannot create the repository folder ${this.config.path}: ${describeError(err)}`, {
        transient: cause.transient,
        cause: err,
      });
    }
  }

  /** `mkdir -p`, safe when several uploads create the same folder at once. */
  private async mkdirs(conn: SftpConnection, dir: string): Promise<void> {
    const mkdir = (): Promise<void> => conn.call((sftp, cb) => sftp.mkdir(dir, cb));
    const exists = (): Promise<boolean> => conn.call<Stats>((sftp, cb) => sftp.stat(dir, cb)).then((s) => s.isDirectory(), () => false);
    try {
      await mkdir();
    } catch (err) {
      if (sftpStatus(err) === SFTP_STATUS.noSuchFile && dir !== '/') {
        await this.mkdirs(conn, posix.dirname(dir));
        await mkdir().catch(async (again: unknown) => {
          if (!(await exists())) throw again;
        });
      } else if (!(await exists())) {
        throw err;
      }
    }
  }

  async put(name: string, source: PutSource): Promise<void> {
    const conn = await this.open();
    const final = this.path(name);
    const temp = posix.join(posix.dirname(final), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      try {
        await this.upload(conn, source, temp);
      } catch (err) {
        if (sftpStatus(err) !== SFTP_STATUS.noSuchFile) throw err;
        await this.mkdirs(conn, posix.dirname(final));
        await this.upload(conn, source, temp);
      }
      await this.fsync(conn, temp);
      await this.rename(conn, temp, final);
    } catch (err) {
      await conn.call((sftp, cb) => sftp.unlink(temp, cb)).catch(() => undefined);
      throw this.fail(name, err);
    }
  }

  private upload(conn: SftpConnection, source: PutSource, remote: string): Promise<void> {
    if ('bytes' in source) return conn.call((sftp, cb) => sftp.writeFile(remote, asBuffer(source.bytes), cb));
    // fastPut keeps several write requests in flight from a fixed buffer (chunk size x concurrency).
    return conn.call((sftp, cb) => sftp.fastPut(source.file, remote, { chunkSize: this.config.writeChunkSize, concurrency: this.config.writeConcurrency }, cb));
  }

  /** Flushes the temp file to the server's disk before the rename, where the server offers fsync@openssh.com. */
  private async fsync(conn: SftpConnection, remote: string): Promise<void> {
    const handle = await conn.call<Buffer>((sftp, cb) => sftp.open(remote, 'r', cb));
    try {
      await conn.call((sftp, cb) => sftp.ext_openssh_fsync(handle, cb)).catch((err: unknown) => {
        if (!isUnsupported(err)) throw err;
      });
    } finally {
      await conn.call((sftp, cb) => sftp.close(handle, cb));
    }
  }

  /**
   * Atomic replace with posix-rename@openssh.com. Plain SFTP rename fails when the target exists, so
   * without the extension an existing object is removed first (objects are immutable, so only rewrites
   * of the same bytes meet that brief window).
   */
  private async rename(conn: SftpConnection, from: string, to: string): Promise<void> {
    if (this.posixRename) {
      try {
        await conn.call((sftp, cb) => sftp.ext_openssh_rename(from, to, cb));
        return;
      } catch (err) {
        if (!isUnsupported(err)) throw err;
        this.posixRename = false;
      }
    }
    try {
      await conn.call((sftp, cb) => sftp.rename(from, to, cb));
    } catch (err) {
      const existing = await conn.call<Stats>((sftp, cb) => sftp.stat(to, cb)).catch(() => undefined);
      if (existing === undefined) throw err;
      await conn.call((sftp, cb) => sftp.unlink(to, cb));
      await conn.call((sftp, cb) => sftp.rename(from, to, cb));
    }
  }

  async get(name: string, range?: ByteRange): Promise<Readable> {
    const conn = await this.open();
    // Open first so a missing object rejects here rather than as a stream error later.
    let handle: Buffer;
    try {
      handle = await conn.call<Buffer>((sftp, cb) => sftp.open(this.path(name), 'r', cb));
    } catch (err) {
      throw this.fail(name, err);
    }
    if (range?.length === 0) {
      await conn.call((sftp, cb) => sftp.close(handle, cb)).catch(() => undefined);
      return Readable.from([]);
    }
    const stream = new ReadAheadStream(conn, handle, {
      start: range?.offset ?? 0,
      end: range ? range.offset + range.length : undefined,
      chunkSize: this.config.readChunkSize,
      concurrency: this.config.readConcurrency,
    });
    return mapStreamErrors(stream, (err) => this.fail(name, err));
  }

  async head(name: string): Promise<ObjectInfo | undefined> {
    const conn = await this.open();
    try {
      const stats = await conn.call<Stats>((sftp, cb) => sftp.stat(this.path(name), cb));
      return stats.isFile() ? { name, size: stats.size, modified: stats.mtime * 1000 } : undefined;
    } catch (err) {
      if (sftpStatus(err) === SFTP_STATUS.noSuchFile) return undefined;
      throw this.fail(name, err);
    }
  }

  /** Walks the folders depth-first, one directory handle open at a time, reading entries in server-sized batches. */
  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const conn = await this.open();
    const pending = [dir];
    for (let rel = pending.pop(); rel !== undefined; rel = pending.pop()) {
      let handle: Buffer;
      try {
        handle = await conn.call<Buffer>((sftp, cb) => sftp.opendir(this.path(rel as string), cb));
      } catch (err) {
        if (sftpStatus(err) === SFTP_STATUS.noSuchFile) continue;
        throw this.fail(rel, err);
      }
      try {
        for (;;) {
          let entries;
          try {
            entries = await conn.call<FileEntryWithStats[]>((sftp, cb) => sftp.readdir(handle, cb));
          } catch (err) {
            if (sftpStatus(err) === SFTP_STATUS.eof) break;
            throw this.fail(rel, err);
          }
          for (const entry of entries) {
            if (entry.filename === '.' || entry.filename === '..' || entry.filename.startsWith(TEMP_PREFIX)) continue;
            const child = rel === '' ? entry.filename : `${rel}/${entry.filename}`;
            if (entry.attrs.isDirectory()) pending.push(child);
            else if (entry.attrs.isFile()) yield { name: child, size: entry.attrs.size, modified: entry.attrs.mtime * 1000 };
          }
        }
      } finally {
        await conn.call((sftp, cb) => sftp.close(handle, cb)).catch(() => undefined);
      }
    }
  }

  async delete(name: string): Promise<void> {
    const conn = await this.open();
    try {
      await conn.call((sftp, cb) => sftp.unlink(this.path(name), cb));
    } catch (err) {
      if (sftpStatus(err) !== SFTP_STATUS.noSuchFile) throw this.fail(name, err);
    }
  }

  async close(): Promise<void> {
    const pending = this.connection;
    this.connection = undefined;
    const current = await pending?.catch(() => undefined);
    await current?.end();
  }
}
