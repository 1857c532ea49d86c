import { Readable } from 'node:stream';
import type { SftpConnection } from './connection.js';

/** Where a ReadAheadStream reads and how many requests it keeps in flight. */
export interface ReadAheadOptions {
  start: number;
  /** Exclusive end offset; undefined = to the end of the file. */
  end: number | undefined;
  chunkSize: number;
  concurrency: number;
}

interface PendingRead {
  position: number;
  length: number;
  result: Promise<Buffer>;
}

/**
 * Streams a byte range of an open SFTP file with several READ requests in flight, so a download is not
 * one network round trip per chunk (ssh2's own ReadStream waits for each). At most `concurrency` chunks
 * are requested ahead, and only while the consumer keeps reading; the handle is closed at the end.
 */
export class ReadAheadStream extends Readable {
  private readonly queue: PendingRead[] = [];
  private next: number;
  private reading = false;
  private wanted = false;
  private eof = false;

  constructor(
    private readonly conn: SftpConnection,
    private readonly handle: Buffer,
    private readonly options: ReadAheadOptions,
  ) {
    super({ highWaterMark: options.chunkSize });
    this.next = options.start;
  }

  private request(position: number, length: number): PendingRead {
    const result = this.conn.call<Buffer>((sftp, cb) =>
      sftp.read(this.handle, Buffer.allocUnsafe(length), 0, length, position, (err, bytesRead, data) => cb(err, err ? Buffer.alloc(0) : data.subarray(0, bytesRead))),
    );
    // A later failure is reported when its turn comes; until then it must not count as unhandled.
    result.catch(() => undefined);
    return { position, length, result };
  }

  private fill(): void {
    const { end, chunkSize, concurrency } = this.options;
    while (!this.eof && this.queue.length < concurrency && (end === undefined || this.next < end)) {
      const length = end === undefined ? chunkSize : Math.min(chunkSize, end - this.next);
      this.queue.push(this.request(this.next, length));
      this.next += length;
    }
  }

  override _read(): void {
    this.wanted = true;
    if (!this.reading) void this.pump();
  }

  /** Delivers chunks in order for as long as the consumer wants more; one pump runs at a time. */
  private async pump(): Promise<void> {
    this.reading = true;
    try {
      while (this.wanted) {
        this.fill();
        const head = this.queue.shift();
        if (head === undefined) {
          this.push(null);
          return;
        }
        const data = await head.result;
        if (data.length === 0) {
          // End of file before the requested end: stop like fs.createReadStream does.
          this.eof = true;
          this.queue.length = 0;
          this.push(null);
          return;
        }
        if (data.length < head.length) {
          // A short read inside the file: ask for the rest before anything queued behind it.
          this.queue.unshift(this.request(head.position + data.length, head.length - data.length));
        }
        this.wanted = this.push(data);
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.reading = false;
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.queue.length = 0;
    // Not awaited: on a lost connection the close would never be answered.
    this.conn.call((sftp, cb) => sftp.close(this.handle, cb)).catch(() => undefined);
    callback(err);
  }
}
