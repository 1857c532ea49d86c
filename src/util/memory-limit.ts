/** Below this memory limit (a pod's cgroup) `auto` keeps work on the main thread that a helper thread would do: its V8 isolate costs ~9 MiB. */
export const HELPER_THREAD_MIN_MEMORY = 96 * 1024 * 1024;

/** How an optional helper thread is chosen: always, never, or by the memory limit. */
export type ThreadSetting = 'auto' | 'on' | 'off';

/** The process's memory limit in bytes (a pod's cgroup limit), or 0 when it has none. */
export function memoryLimit(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  // Without a cgroup limit libuv may report the largest 64-bit number rather than 0.
  return limit >= Number.MAX_SAFE_INTEGER ? 0 : limit;
}

/** Whether an optional thread runs: `on` and `off` as set; `auto` unless a memory limit below `minimum` applies. */
export function threadWanted(setting: ThreadSetting, minimum: number, limit: number = memoryLimit()): boolean {
  if (setting !== 'auto') return setting === 'on';
  return limit === 0 || limit >= minimum;
}
