import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** A key and a self-signed certificate for 127.0.0.1 (key.pem, cert.pem in `dir`): the fake's own, and the CA a pod trusts. */
export function selfSignedCert(dir: string): { key: Buffer; cert: Buffer } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=kubernetes', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
}

/** A service account as kubelet mounts it, in `dir`: the token the fake accepts, namespace `apps`, `ca` as ca.crt. */
export function writeServiceAccount(dir: string, ca: Buffer): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'token'), 'test-token\n');
  writeFileSync(join(dir, 'namespace'), 'apps');
  writeFileSync(join(dir, 'ca.crt'), ca);
}

/** One request the fake API server saw. */
export interface Seen {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  auth: string | undefined;
  body: any;
}

/** An object as stored by the fake API server. */
export interface Stored {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string>; [k: string]: unknown };
  spec?: any;
  status?: any;
  [k: string]: unknown;
}

const OBJECT_PATH = /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([a-z]+)(?:\/([^/]+))?$/;

/** Whether an object's labels match a selector of `key=value` terms. */
function matches(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [key, value] = term.split('=');
    return labels?.[key!] === value;
  });
}

/**
 * Plays the API server over HTTPS for any namespaced resource: create (also with generateName), get,
 * list with a label selector, update with optimistic concurrency, delete. Tests play the controllers
 * (snapshot, Job) by changing stored objects in `beforeHandle` or directly.
 */
export class FakeApiServer {
  readonly seen: Seen[] = [];
  /** Paths (prefixes) answered with 403 Forbidden. */
  readonly forbidden: string[] = [];
  /** Called before a request is handled, to simulate another job or a controller acting in between. */
  beforeHandle: ((req: Seen) => void) | undefined;
  readonly #objects = new Map<string, Map<string, Stored>>();
  #version = 100;
  #server: Server;
  port = 0;

  constructor(key: Buffer, cert: Buffer) {
    this.#server = createServer({ key, cert }, (req, res) => void this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  reset(): void {
    this.seen.length = 0;
    this.#objects.clear();
    this.forbidden.length = 0;
    this.beforeHandle = undefined;
  }

  /** The stored objects of one resource (by plural: leases, jobs, volumesnapshots…). */
  store(plural: string): Map<string, Stored> {
    let map = this.#objects.get(plural);
    if (!map) this.#objects.set(plural, (map = new Map()));
    return map;
  }

  get leases(): Map<string, Stored> {
    return this.store('leases');
  }

  /** Store an object as if someone else had written it. */
  set(plural: string, object: Omit<Stored, 'metadata'> & { metadata: { name: string; namespace?: string; [k: string]: unknown } }): Stored {
    const stored = { ...object, metadata: { namespace: 'apps', ...object.metadata, resourceVersion: String(++this.#version) } } as Stored;
    this.store(plural).set(stored.metadata.name, stored);
    return stored;
  }

  /** Store a Lease as if another job had written it. */
  put(name: string, spec: Record<string, any>, namespace = 'apps'): void {
    this.set('leases', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec });
  }

  requests(method: string, pathPart: string): Seen[] {
    return this.seen.filter((s) => s.method === method && s.path.includes(pathPart));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'https://fake');
    const seen: Seen = { method: req.method ?? '', path: url.pathname, query: url.searchParams, auth: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
    this.seen.push(seen);
    this.beforeHandle?.(seen);
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    const status = (code: number, reason: string, message: string): void => reply(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
    if (seen.auth !== 'Bearer test-token') return status(401, 'Unauthorized', 'Unauthorized');
    if (this.forbidden.some((p) => seen.path.startsWith(p))) return status(403, 'Forbidden', `forbidden: User "system:serviceaccount:apps:default" cannot ${seen.method} ${seen.path}`);
    const match = OBJECT_PATH.exec(seen.path);
    if (!match) return status(404, 'NotFound', 'no such path');
    const [, namespace, plural, name] = match as unknown as [string, string, string, string | undefined];
    const store = this.store(plural);
    const notFound = (): void => status(404, 'NotFound', `${plural} "${name}" not found`);
    if (seen.method === 'POST' && !name) {
      const body = seen.body as Stored;
      const objectName = body.metadata.name || `${body.metadata.generateName as string}${this.#version}`;
      if (store.has(objectName)) return status(409, 'AlreadyExists', `${plural} "${objectName}" already exists`);
      const stored = { ...body, metadata: { ...body.metadata, name: objectName, namespace, uid: `uid-${objectName}`, resourceVersion: String(++this.#version) } };
      store.set(objectName, stored);
      return reply(201, stored);
    }
    if (seen.method === 'GET' && !name) {
      return reply(200, { apiVersion: 'v1', kind: 'List', metadata: {}, items: [...store.values()].filter((o) => matches(o.metadata.labels, seen.query.get('labelSelector'))) });
    }
    const current = name ? store.get(name) : undefined;
    if (!current) return notFound();
    if (seen.method === 'GET') return reply(200, current);
    if (seen.method === 'DELETE') {
      store.delete(name!);
      return reply(200, current);
    }
    if (seen.method === 'PUT') {
      if (seen.body.metadata?.resourceVersion !== current.metadata.resourceVersion) {
        return status(409, 'Conflict', `Operation cannot be fulfilled on ${plural} "${name}": the object has been modified`);
      }
      const stored = { ...seen.body, metadata: { ...seen.body.metadata, resourceVersion: String(++this.#version) } } as Stored;
      store.set(name!, stored);
      return reply(200, stored);
    }
    return status(405, 'MethodNotAllowed', 'method not allowed');
  }
}
