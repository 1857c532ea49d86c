// Scan throughput of the FastCDC cutter: `node --import tsx bench/fastcdc.ts [GiB]`.
import { DEFAULT_CHUNKER_PARAMS, FastCdc } from '../src/chunker/fastcdc.js';
import { Prng } from '../test/fixtures/prng.js';

const BUFFER = 8 * 1024 * 1024;
const total = Math.round(Number(process.argv[2] ?? 1) * 1024 ** 3);
const prng = new Prng('bench fastcdc');
const cutter = new FastCdc(DEFAULT_CHUNKER_PARAMS);

let scanNs = 0n;
let chunks = 0;
for (let done = 0; done < total; done += BUFFER) {
  let buf = prng.next(BUFFER);
  const start = process.hrtime.bigint();
  while (buf.length) {
    const r = cutter.update(buf);
    if (r.boundary) chunks++;
    buf = buf.subarray(r.consumed);
  }
  scanNs += process.hrtime.bigint() - start;
}
const seconds = Number(scanNs) / 1e9;
console.log(`fastcdc: ${(total / 1e6 / seconds).toFixed(0)} MB/s over ${total / 1024 ** 3} GiB, ${chunks} chunks, mean ${(total / Math.max(chunks, 1) / 1024).toFixed(0)} KiB`);
