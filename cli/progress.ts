import cliProgress from 'cli-progress';
import type { Logger } from 'pino';

/**
 * Progress of a long job: a bar on an interactive terminal, otherwise a log
 * line at most every `logEveryMs` (so CI logs and files stay readable).
 */
export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export function createProgress(options: {
  label: string;
  total: number;
  logger: Logger;
  /** Extra payload shown after the bar, e.g. `loss {loss}`. */
  format?: string;
  logEveryMs?: number;
}): Progress {
  const { label, total, logger } = options;
  if (process.stderr.isTTY === true && process.env['CI'] === undefined) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}${options.format !== undefined ? ` | ${options.format}` : ''}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    return {
      update: (done, fields) => bar.update(done, fields ?? {}),
      stop: () => bar.stop(),
    };
  }
  const every = options.logEveryMs ?? 5000;
  let last = 0;
  const started = Date.now();
  return {
    update(done, fields) {
      const now = Date.now();
      if (now - last < every && done < total) return;
      last = now;
      const elapsed = (now - started) / 1000;
      const eta = done > 0 ? Math.round((elapsed * (total - done)) / done) : null;
      logger.info({ progress: label, done, total, etaSeconds: eta, ...fields }, `${label} ${done}/${total}`);
    },
    stop() {
      /* log lines need no teardown */
    },
  };
}
