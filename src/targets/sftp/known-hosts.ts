import { createHash, createHmac } from 'node:crypto';

/** Accepts or refuses the host key an SSH server presents; `reason` is a one-line explanation. */
export type HostKeyVerdict = { ok: true } | { ok: false; reason: string };

/** How the SFTP target decides whether to trust a server. */
export interface HostKeyCheck {
  /** Judges the public key blob the server presented. */
  check(key: Buffer): HostKeyVerdict;
  /** Host key algorithms to ask for, so the server shows a key we can check (undefined = ssh2's default order). */
  algorithms: string[] | undefined;
}

interface KnownHostLine {
  marker: '' | '@revoked';
  patterns: string;
  keyType: string;
  key: Buffer;
}

/** ssh2's preference order; RSA keys are offered under three signature algorithm names. */
const ALGORITHM_ORDER = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
function blobType(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString('latin1');
}

/** The name OpenSSH looks up in known_hosts: `host`, or `[host]:port` when the port is not 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function parseKnownHosts(text: string): KnownHostLine[] {
  const lines: KnownHostLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    let marker: KnownHostLine['marker'] = '';
    if (fields[0].startsWith('@')) {
      // Certificate authorities are not supported: such a line never vouches for a key here.
      if (fields[0] !== '@revoked') continue;
      marker = '@revoked';
      fields.shift();
    }
    const [patterns, keyType, key] = fields;
    if (patterns === undefined || keyType === undefined || key === undefined) continue;
    lines.push({ marker, patterns, keyType, key: Buffer.from(key, 'base64') });
  }
  return lines;
}

/** OpenSSH's host pattern match: `*` and `?` wildcards, case-insensitive. */
function wildcardMatch(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i').test(name);
}

/** Whether a known_hosts host field (plain patterns with `!` negations, or one `|1|salt|hash` entry) names `name`. */
function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (salt === undefined || hash === undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return false;
    } else if (wildcardMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** Host key algorithms for the key types known for a host, in ssh2's preference order. */
function algorithmsFor(keyTypes: Set<string>): string[] | undefined {
  const wanted = ALGORITHM_ORDER.filter((alg) => keyTypes.has(alg.startsWith('rsa-sha2-') ? 'ssh-rsa' : alg));
  return wanted.length > 0 ? wanted : undefined;
}

/** Trust exactly the keys a known_hosts file lists for this host and port (plain or hashed entries). */
export function knownHostsCheck(text: string, file: string, host: string, port: number): HostKeyCheck {
  const name = knownHostsName(host, port);
  const entries = parseKnownHosts(text).filter((line) => hostMatches(line.patterns, name));
  const trusted = entries.filter((line) => line.marker === '');
  const revoked = entries.filter((line) => line.marker === '@revoked');
  return {
    algorithms: algorithmsFor(new Set(trusted.map((line) => line.keyType))),
    check(key) {
      const shown = `${blobType(key)} ${fingerprint(key)}`;
      if (revoked.some((line) => line.key.equals(key))) {
        return { ok: false, reason: `host key of ${name} (${shown}) is marked @revoked in ${file}; refusing to connect` };
      }
      if (trusted.some((line) => line.key.equals(key))) return { ok: true };
      if (trusted.length > 0) {
        return {
          ok: false,
          reason: `host key of ${name} (${shown}) does not match the one in ${file}; refusing to connect: the server's key changed or someone is intercepting the connection`,
        };
      }
      return {
        ok: false,
        reason: `host key of ${name} (${shown}) is unknown: it is not in ${file}; verify it, then add it (ssh-keyscan -p ${port} ${host} >> ${file}) or pin it with --sftp-host-fingerprint`,
      };
    },
  };
}

/** Trust only keys with one of these `SHA256:` fingerprints (a pinned key, e.g. from `ssh-keygen -lf`). */
export function fingerprintCheck(pinned: string[], host: string, port: number): HostKeyCheck {
  const wanted = new Set(pinned.map((fp) => fp.replace(/=+$/, '')));
  return {
    algorithms: undefined,
    check(key) {
      const actual = fingerprint(key);
      if (wanted.has(actual)) return { ok: true };
      return {
        ok: false,
        reason: `host key of ${knownHostsName(host, port)} (${blobType(key)} ${actual}) does not match --sftp-host-fingerprint ${pinned.join(',')}; refusing to connect`,
      };
    },
  };
}

/** Every check must accept the key (known_hosts and a pinned fingerprint may both be configured). */
export function allChecks(checks: HostKeyCheck[]): HostKeyCheck {
  return {
    algorithms: checks.map((c) => c.algorithms).find((a) => a !== undefined),
    check(key) {
      for (const c of checks) {
        const verdict = c.check(key);
        if (!verdict.ok) return verdict;
      }
      return { ok: true };
    },
  };
}
