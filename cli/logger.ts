import { pino, type Logger } from 'pino';

/**
 * The root logger: JSON lines on stderr (stdout carries reports and
 * `--json`). `STRATA_LOG_LEVEL` sets the level; default `info`, or `warn`
 * under `--quiet`. Only cli/ creates it; every component takes a child.
 */
export function createRootLogger(options: { quiet?: boolean } = {}): Logger {
  const level = process.env['STRATA_LOG_LEVEL'] ?? (options.quiet === true ? 'warn' : 'info');
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
