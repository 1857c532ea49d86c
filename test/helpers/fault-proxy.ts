import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from './wait.js';

/** What the proxy does to one request instead of passing it on. */
export type Fault =
  /** An S3 error answer (500 InternalError, 503 ServiceUnavailable, 429 SlowDown), the request's body read first. */
  | { kind: 'status'; status: number; code: string }
  /** The connection is reset: before any answer, after part of an upload's body has arrived. */
  | { kind: 'reset' }
  /** The real answer's headers and half its body, then (a moment later, mid-read) the connection is cut. */
  | { kind: 'truncate' }
  /** The real answer, late. */
  | { kind: 'slow'; delayMs: number }
  /** Kept waiting until release(): a storage that stalls, at a moment the test chooses. */
  | { kind: 'hold' };

/** One request the proxy saw: its method, path (without query), whole URL and place in the order of arrival. */
export interface SeenRequest {
  method: string;
  path: string;
  url: string;
  index: number;
}

/** An HTTP proxy in front of s3rver that injects faults into the requests a rule picks. */
export interface FaultProxy {
  port: number;
  endpoint: string;
  /** Picks the fault for each request (undefined: pass it on); replaceable between runs. */
  rule: (req: SeenRequest) => Fault | undefined;
  readonly requests: SeenRequest[];
  /** Faults injected so far, by kind (holds count once released). */
  readonly injected: Record<Fault['kind'], number>;
  /** Requests held now. */
  readonly held: number;
  /** Let every held request go on. */
  release(): void;
  /** Resolves once `n` requests are held; fails after `timeoutMs`. */
  waitForHeld(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const PASS = (): undefined => undefined;

function s3ErrorBody(code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>`;
}

/** Starts the proxy on 127.0.0.1 (random port) in front of 127.0.0.1:upstream. */
export async function startFaultProxy(upstream: number): Promise<FaultProxy> {
  const agent = new Agent({ keepAlive: true });
  const requests: SeenRequest[] = [];
  const injected: Record<Fault['kind'], number> = { status: 0, reset: 0, truncate: 0, slow: 0, hold: 0 };
  let waiting: (() => void)[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void => {
    const up = request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      const send = (): void => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (fault?.kind !== 'truncate') {
          answer.pipe(res);
          return;
        }
        const half = Math.floor(Number(answer.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        const cut = (): void => void setTimeout(() => res.socket?.destroy(), 100);
        answer.on('data', (data: Buffer) => {
          const room = half - sent;
          if (room <= 0) return;
          res.write(data.subarray(0, room));
          sent += Math.min(room, data.length);
          // The client has half the body and is reading it; then the connection breaks, as a dropped network would.
          if (sent >= half) cut();
        });
        answer.on('end', () => half === 0 && cut());
      };
      if (fault?.kind === 'slow') setTimeout(send, fault.delayMs);
      else send();
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '';
    const seen: SeenRequest = { method: req.method ?? '', path: url.split('?')[0] ?? '', url, index: requests.length };
    requests.push(seen);
    const fault = proxy.rule(seen);
    if (fault) injected[fault.kind]++;
    switch (fault?.kind) {
      case 'status': {
        req.resume();
        await new Promise((done) => req.once('end', done));
        const body = s3ErrorBody(fault.code);
        res.writeHead(fault.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) }).end(body);
        return;
      }
      case 'reset': {
        // Some of an upload arrives first, so the break is mid-transfer, not before it.
        const contentLength = Number(req.headers['content-length'] ?? 0);
        if (contentLength > 0) await Promise.race([new Promise((done) => req.once('data', done)), new Promise((done) => req.once('end', done))]);
        req.socket.resetAndDestroy();
        return;
      }
      case 'hold':
        await new Promise<void>((done) => waiting.push(done));
        forward(req, res, undefined);
        return;
      default:
        forward(req, res, fault);
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const proxy: FaultProxy = {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    rule: PASS,
    requests,
    injected,
    get held() {
      return waiting.length;
    },
    release() {
      const go = waiting;
      waiting = [];
      for (const done of go) done();
    },
    waitForHeld: (n, timeoutMs = 60_000) => waitUntil(() => waiting.length >= n, `${n} held requests at the proxy`, timeoutMs, 10),
    async stop() {
      proxy.release();
      server.closeAllConnections();
      agent.destroy();
      await Promise.race([new Promise((done) => server.close(done)), sleep(5_000)]);
    },
  };
  return proxy;
}

/**
 * A rule that gives `fault` to the requests `picks` chooses, at most `max` times: e.g. every third PUT
 * of a content object. Returns the rule and how many it has faulted.
 */
export function everyNth(n: number, fault: Fault, picks: (req: SeenRequest) => boolean, max = Infinity): { rule: (req: SeenRequest) => Fault | undefined; count: () => number } {
  let seen = 0;
  let given = 0;
  return {
    rule: (req) => {
      if (!picks(req)) return undefined;
      seen++;
      if (seen % n !== 0 || given >= max) return undefined;
      given++;
      return fault;
    },
    count: () => given,
  };
}
