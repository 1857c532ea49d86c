// SEIPDv2 throughput and memory: `node --import tsx bench/seipd.ts [GiB]`. Encryption and decryption
// each run in a child process of their own, so each peak RSS is that phase's alone.
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { seipdDecryptor } from '../src/crypto/seipd-decrypt.js';
import { seipdEncryptor } from '../src/crypto/seipd.js';
import { pseudoRandomBytes } from '../test/fixtures/prng.js';

/** Plaintext is this pattern repeated: generating 1 GiB of fresh randomness would dominate the timing. */
const PATTERN = pseudoRandomBytes('bench seipd', 8 * 1024 * 1024);
const SLICE = 1024 * 1024;
const KEY = Buffer.alloc(32, 7);

const [phase, file, gib] = process.argv.slice(2);

/** The plaintext, `total` bytes of PATTERN in 1 MiB slices. */
async function* plaintext(total: number): AsyncGenerator<Buffer> {
  for (let done = 0; done < total; done += SLICE) {
    const at = done % PATTERN.length;
    yield PATTERN.subarray(at, at + Math.min(SLICE, total - done));
  }
}

/** Check decrypted bytes against PATTERN (a memcmp: cheap next to AES-GCM), counting them. */
async function verify(source: AsyncIterable<Buffer>): Promise<number> {
  let offset = 0;
  for await (const b of source) {
    for (let pos = 0; pos < b.length; ) {
      const at = offset % PATTERN.length;
      const n = Math.min(b.length - pos, PATTERN.length - at);
      if (!b.subarray(pos, pos + n).equals(PATTERN.subarray(at, at + n))) throw new Error(`plaintext differs near byte ${offset}`);
      pos += n;
      offset += n;
    }
  }
  return offset;
}

/** Time `work`; throughput per CPU-second is printed too, as wall time swings on a shared machine. */
async function run(what: string, total: number, work: () => Promise<void>): Promise<void> {
  const before = process.resourceUsage().maxRSS / 1024;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(`${what}: ${(total / 1e6 / seconds).toFixed(0)} MB/s, ${(total / 1e6 / cpuSeconds).toFixed(0)} MB per CPU-second, peak RSS ${peak.toFixed(0)} MiB (${before.toFixed(0)} MiB before the phase)`);
}

if (phase === undefined || /^[\d.]+$/.test(phase)) {
  const size = String(phase ?? 1);
  const path = join(tmpdir(), `kbrackup-bench-seipd-${process.pid}.pgp`);
  try {
    for (const step of ['encrypt', 'decrypt']) {
      const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), step, path, size], { stdio: 'inherit' });
      if (child.status !== 0) process.exit(child.status ?? 1);
    }
  } finally {
    rmSync(path, { force: true });
  }
} else {
  const total = Math.round(Number(gib) * 1024 ** 3);
  const target = file as string;
  if (phase === 'encrypt') {
    await run(`encrypt ${gib} GiB`, total, () => pipeline(plaintext(total), seipdEncryptor({ sessionKey: KEY }), createWriteStream(target)));
  } else {
    await run(`decrypt ${gib} GiB`, total, async () => {
      const got = await pipeline(createReadStream(target, { highWaterMark: SLICE }), seipdDecryptor(KEY, 'bench'), verify);
      if (got !== total) throw new Error(`decrypted ${got} bytes, expected ${total}`);
    });
  }
}
