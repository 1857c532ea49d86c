/** Parsers of what a CLI run printed: --json lines on stdout, pino log lines on stderr. */

/** Lines of stdout parsed as JSON (for --json output). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The summary line of `backup --json`. */
export function summaryOf(stdout: string): Record<string, number | string> {
  const summary = jsonLines(stdout).find((l) => l.message_type === 'summary');
  if (!summary) throw new Error(`no summary line in:\n${stdout}`);
  return summary as Record<string, number | string>;
}

/** The pino log lines a run wrote on stderr (other lines are left out). */
export function logLines(stderr: string): { level: number; msg: string; object?: string }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; object?: string })
    .filter((l) => typeof l.level === 'number');
}
