import type { ChildProcess } from 'node:child_process';

/** Resolves with the first line `child` prints on stdout that matches `pattern`; rejects if it exits or stays silent. */
export function waitForLine(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp, what: string, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new Error(`${what} did not start within ${timeoutMs} ms; output: ${seen.slice(-2000)}`)), timeoutMs);
    const onData = (data: Buffer): void => {
      seen += data.toString();
      for (const line of seen.split('\n')) {
        const match = pattern.exec(line);
        if (match) return finish(undefined, match);
      }
    };
    const onExit = (code: number | null): void => finish(new Error(`${what} exited with ${code} before it was ready; output: ${seen.slice(-2000)}`));
    function finish(err: Error | undefined, match?: RegExpMatchArray): void {
      clearTimeout(timer);
      child[stream]?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(match as RegExpMatchArray);
    }
    child[stream]?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Stops a child process started by a test helper and waits until it is gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
