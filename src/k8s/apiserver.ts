import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { KbrackupError } from '../errors.js';
import type { ClusterConfig } from './cluster.js';

/** A non-2xx answer of the API server, with its status and the message of its Status object. */
export class ApiStatusError extends KbrackupError {
  readonly status: number;
  constructor(method: string, path: string, status: number, message: string) {
    super(`Kubernetes API ${method} ${path}: ${status}${message ? ` ${message}` : ''}`);
    this.status = status;
  }
}

/** One request's outcome: the status and parsed JSON body. */
export interface ApiResponse<T> {
  status: number;
  body: T;
}

const MAX_BODY = 1024 * 1024;

/**
 * The few REST calls the job makes (create Event; get/create/update Lease), over node:https.
 * Not @kubernetes/client-node: importing it costs ~70 MiB RSS and ~29 MiB of V8 heap (measured on
 * Node 20), which alone overflows the capped heap that lets a backup fit a 64 MiB pod. Its model
 * types are still used for the request bodies.
 */
export class ApiServer {
  readonly namespace: string;
  readonly #config: ClusterConfig;
  readonly #timeoutMs: number;

  constructor(config: ClusterConfig, options: { timeoutMs?: number } = {}) {
    this.#config = config;
    this.namespace = config.namespace;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Send one request; resolves for any status so callers can handle 404/409, rejects on network errors. */
  async request<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<ApiResponse<T>> {
    const token = (await readFile(this.#config.tokenFile, 'utf8')).trim();
    const url = new URL(path, this.#config.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { Accept: 'application/json', 'User-Agent': 'kbrackup' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, ca: this.#config.ca, timeout: this.#timeoutMs, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_BODY) chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // A proxy's HTML error page: keep the text for the error message.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like request, but any status outside 2xx and `allowed` becomes an ApiStatusError. */
  async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, allowed: number[] = []): Promise<ApiResponse<T>> {
    const res = await this.request<T>(method, path, body);
    if ((res.status >= 200 && res.status < 300) || allowed.includes(res.status)) return res;
    throw new ApiStatusError(method, path, res.status, statusMessage(res.body));
  }
}

/** The message of an API answer: its Status object's, or the start of a non-JSON body (a proxy's error page). */
export function statusMessage(body: unknown): string {
  if (body && typeof body === 'object' && 'message' in body && typeof body.message === 'string') return body.message;
  return typeof body === 'string' ? body.slice(0, 200).replace(/\s+/g, ' ') : '';
}
