import { KbrackupError } from '../errors.js';
import type { Cutter } from './cutter.js';
import { FastCdc } from './fastcdc.js';
import { FixedCutter } from './fixed.js';

/** Chunking parameters, fixed for the life of a repository so equal data always cuts the same way. */
export type ChunkerConfig = { algorithm: 'fixed'; size: number } | { algorithm: 'fastcdc'; min: number; avg: number; max: number };

/** Everything needed to build a repository's cutter, in a form that crosses to a worker thread. */
export interface CutterSpec {
  config: ChunkerConfig;
  /** The repository's secret gear seed (FastCDC). */
  seed: Uint8Array;
}

/** The repository's cutter. */
export function newCutter(spec: CutterSpec): Cutter {
  const c = spec.config;
  if (c.algorithm === 'fixed') return new FixedCutter(c.size);
  if (c.algorithm === 'fastcdc') return new FastCdc(c, spec.seed);
  throw new KbrackupError(`this kbrackup cannot cut chunks with "${(c as { algorithm: string }).algorithm}"; use a newer kbrackup`);
}

/** The largest chunk the repository's chunker makes. */
export function maxChunkSize(c: ChunkerConfig): number {
  return c.algorithm === 'fixed' ? c.size : c.max;
}
