import pino, { type Logger } from 'pino';

/** pino JSON logs on stderr, so stdout stays free for --json output. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'kbrackup' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
