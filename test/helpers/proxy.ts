import { connect, createServer, type Socket } from 'node:net';

/** A TCP proxy in front of a test server that breaks some connections on purpose. */
export interface CuttingProxy {
  port: number;
  /** How many connections were cut so far. */
  readonly cuts: number;
  /** How often `needle` appeared in what clients sent (e.g. HTTP request lines). */
  count(needle: string): number;
  stop(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:PORT to 127.0.0.1:upstream. A connection on which the client has sent more than
 * `afterBytes` bytes is reset, as a server or network that drops mid-upload would, `maxCuts` times at most;
 * with `direction` 'download', one on which the server has sent that much (a drop mid-download). With
 * `refuseAfterCut`, every connection after the first cut is reset at once: a server that went away.
 */
export function startCuttingProxy(
  upstream: number,
  afterBytes: number,
  maxCuts = 1,
  needles: string[] = [],
  { direction = 'upload', refuseAfterCut = false }: { direction?: 'upload' | 'download'; refuseAfterCut?: boolean } = {},
): Promise<CuttingProxy> {
  let cuts = 0;
  const counts = new Map(needles.map((n) => [n, 0]));
  const overlap = Math.max(0, ...needles.map((n) => n.length - 1));
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (refuseAfterCut && cuts > 0) {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const remote = connect({ host: '127.0.0.1', port: upstream });
    for (const s of [client, remote]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    let sent = 0;
    let received = 0;
    let tail = '';
    const cut = (): void => {
      cuts++;
      client.resetAndDestroy();
      remote.resetAndDestroy();
    };
    client.on('data', (data: Buffer) => {
      sent += data.length;
      if (needles.length > 0) {
        // Keep the end of the previous chunk so a needle split across two TCP reads still counts.
        const text = tail + data.toString('latin1');
        for (const needle of needles) {
          // Only matches that end in the new data; those ending in the kept tail were counted before.
          for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + 1)) {
            if (at + needle.length > tail.length) counts.set(needle, (counts.get(needle) ?? 0) + 1);
          }
        }
        tail = text.slice(text.length - overlap);
      }
      if (direction === 'upload' && sent > afterBytes && cuts < maxCuts) return cut();
      if (!remote.write(data)) client.pause();
    });
    remote.on('drain', () => client.resume());
    remote.on('data', (data: Buffer) => {
      received += data.length;
      if (direction === 'download' && received > afterBytes && cuts < maxCuts) return cut();
      if (!client.write(data)) remote.pause();
    });
    client.on('drain', () => remote.resume());
    remote.on('end', () => client.end());
    client.on('end', () => remote.end());
    client.on('close', () => remote.destroy());
    remote.on('close', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || address === null) return reject(new Error('proxy has no port'));
      resolve({
        port: address.port,
        get cuts() {
          return cuts;
        },
        count: (needle) => counts.get(needle) ?? 0,
        stop: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
