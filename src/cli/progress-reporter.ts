import type { Logger } from 'pino';
import type { Progress } from '../backup/progress.js';
import { formatSize } from '../util/sizes.js';

/** Seconds between progress lines in logs (pods have no terminal). */
const LOG_INTERVAL = 30;

/**
 * Progress as the reader can take it: JSON status lines with --json, a redrawn line on a terminal,
 * otherwise a log line every 30 s. Returns a function that stops it.
 */
export function startProgress(progress: Progress, json: boolean, print: (line: string) => void, logger: Logger): () => void {
  const tty = process.stderr.isTTY === true;
  const line = () =>
    `${progress.filesDone} files, ${formatSize(progress.bytesDone)} processed, ${formatSize(progress.dataAdded)} added, ${progress.errors} errors, ${Math.round((Date.now() - progress.start) / 1000)}s`;
  const timer = setInterval(
    () => {
      if (json) print(JSON.stringify(progress.status()));
      else if (tty) process.stderr.write(`\r${line()}\x1b[K`);
      else logger.info({ progress: progress.status() }, line());
    },
    json ? 1000 : tty ? 250 : LOG_INTERVAL * 1000,
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty && !json) process.stderr.write('\r\x1b[K');
  };
}
