import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fingerprint, fingerprintCheck, knownHostsCheck } from '../src/targets/sftp/known-hosts.js';

/** A fresh public key from ssh-keygen: its blob and its known_hosts `type base64` form. */
function hostKey(dir: string, type: 'ed25519' | 'ecdsa'): { blob: Buffer; line: string } {
  const path = join(dir, type);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', path]);
  const [keyType, base64] = readFileSync(`${path}.pub`, 'utf8').split(' ');
  return { blob: Buffer.from(base64 ?? '', 'base64'), line: `${keyType} ${base64}` };
}

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts checking', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kbrackup-keys-'));
  const a = hostKey(dir, 'ed25519');
  const b = hostKey(dir, 'ecdsa');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('looks up port 22 as the bare host and other ports as [host]:port', () => {
    const text = `backup.example.org ${a.line}\n[backup.example.org]:2222 ${b.line}\n`;
    assert.deepEqual(knownHostsCheck(text, 'kh', 'backup.example.org', 22).check(a.blob), { ok: true });
    assert.equal(knownHostsCheck(text, 'kh', 'backup.example.org', 22).check(b.blob).ok, false);
    assert.deepEqual(knownHostsCheck(text, 'kh', 'backup.example.org', 2222).check(b.blob), { ok: true });
    assert.match(JSON.stringify(knownHostsCheck(text, 'kh', 'backup.example.org', 2222).check(a.blob)), /does not match/);
  });

  it('matches hashed entries, comma lists, wildcards and negations', () => {
    assert.ok(knownHostsCheck(`${hashed('[10.0.0.5]:2200')} ${a.line}`, 'kh', '10.0.0.5', 2200).check(a.blob).ok);
    assert.ok(!knownHostsCheck(`${hashed('10.0.0.5')} ${a.line}`, 'kh', '10.0.0.5', 2200).check(a.blob).ok);
    assert.ok(knownHostsCheck(`old.example.org,nas.example.org ${a.line}`, 'kh', 'NAS.example.org', 22).check(a.blob).ok);
    assert.ok(knownHostsCheck(`*.example.org ${a.line}`, 'kh', 'nas.example.org', 22).check(a.blob).ok);
    assert.ok(!knownHostsCheck(`*.example.org,!nas.example.org ${a.line}`, 'kh', 'nas.example.org', 22).check(a.blob).ok);
    assert.ok(!knownHostsCheck(`nas?.example.org ${a.line}`, 'kh', 'nas.example.org', 22).check(a.blob).ok);
  });

  it('ignores comments, blank lines and @cert-authority lines; honours @revoked', () => {
    const text = `# comment\n\n@cert-authority * ${a.line}\n`;
    assert.match(JSON.stringify(knownHostsCheck(text, 'kh', 'h', 22).check(a.blob)), /is unknown/);
    const revoked = `h ${a.line}\n@revoked * ${a.line}\n`;
    assert.match(JSON.stringify(knownHostsCheck(revoked, 'kh', 'h', 22).check(a.blob)), /@revoked/);
  });

  it('asks the server for the key types it knows, RSA under its SHA-2 names too', () => {
    assert.deepEqual(knownHostsCheck(`h ${b.line}`, 'kh', 'h', 22).algorithms, ['ecdsa-sha2-nistp256']);
    assert.deepEqual(knownHostsCheck(`h ssh-rsa AAAA\nh ${a.line}`, 'kh', 'h', 22).algorithms, ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    assert.equal(knownHostsCheck('', 'kh', 'h', 22).algorithms, undefined);
  });

  it('pins fingerprints as ssh-keygen prints them (with or without base64 padding)', () => {
    const fp = fingerprint(a.blob);
    assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.ok(fingerprintCheck([fp], 'h', 22).check(a.blob).ok);
    assert.ok(fingerprintCheck([`${fp}=`], 'h', 22).check(a.blob).ok);
    assert.match(JSON.stringify(fingerprintCheck([fp], 'h', 2222).check(b.blob)), /\[h\]:2222 \(ecdsa-sha2-nistp256 SHA256:.*does not match --sftp-host-fingerprint/);
  });
});
