// The shape of a side-by-side run's results (docs/side-by-side.json), and the medians taken of them.
import type { Amount, Target } from './data.js';
import type { ToolName } from './tools.js';

export const PHASES = [
  { id: 'first', label: 'first backup', backup: true },
  { id: 'unchanged', label: 'unchanged re-run', backup: true },
  { id: 'changed', label: 're-run, 1% changed', backup: true },
  { id: 'restore', label: 'restore', backup: false },
  { id: 'ls', label: '`ls` of one folder', backup: false },
  { id: 'restore-one', label: 'restore of one file', backup: false },
] as const;
export type Phase = (typeof PHASES)[number]['id'];

/** One tool's run of one phase in one round. */
export interface Run {
  round: number;
  tool: ToolName;
  phase: Phase;
  ok: boolean;
  error?: string;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** Bytes the repository grew by (backup phases). */
  addedBytes?: number;
  /** kbrackup-64: what memcap reported (its peak counts the page cache, as a pod's limit does). */
  memcap?: { rc: number; peakMiB: number; failcnt: number };
  /** The machine's 1-minute load average as the phase started: other work on the machine shows here. */
  load1: number;
}

export interface SetResult {
  name: string;
  description: string;
  target: Target;
  size: Amount;
  /** What each round's change rewrote. */
  changed: Amount[];
  generateSeconds: number;
  tools: ToolName[];
  runs: Run[];
}

export interface Results {
  command: string;
  started: string;
  finished?: string;
  options: { sets: string[]; tools: ToolName[]; rounds: number; scale: number; cold: boolean; timeoutSeconds: number };
  machine: { nproc: number; cpu: string; ramGiB: number; kernel: string; node: string; workFs: string; loadAtStart: number[]; loadAtEnd?: number[] };
  versions: Partial<Record<ToolName, string>>;
  rssMethod: string;
  sets: SetResult[];
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Medians of a tool's successful runs of a phase, with how many of its runs succeeded. */
export interface Summary {
  runs: number;
  ok: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  addedBytes?: number;
  cgroupPeakMiB?: number;
  firstError?: string;
}

export function summarize(set: SetResult, tool: ToolName, phase: Phase): Summary | undefined {
  const runs = set.runs.filter((r) => r.tool === tool && r.phase === phase);
  if (!runs.length) return undefined;
  const ok = runs.filter((r) => r.ok);
  const of = (pick: (r: Run) => number | undefined): number | undefined => {
    const values = ok.map(pick).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : undefined;
  };
  const added = of((r) => r.addedBytes);
  const cgroup = of((r) => r.memcap?.peakMiB);
  const error = runs.find((r) => !r.ok)?.error;
  return {
    runs: runs.length,
    ok: ok.length,
    wallSeconds: of((r) => r.wallSeconds) ?? NaN,
    cpuSeconds: of((r) => r.cpuSeconds) ?? NaN,
    peakRssMiB: of((r) => r.peakRssMiB) ?? NaN,
    ...(added !== undefined ? { addedBytes: added } : {}),
    ...(cgroup !== undefined ? { cgroupPeakMiB: cgroup } : {}),
    ...(error ? { firstError: error } : {}),
  };
}
