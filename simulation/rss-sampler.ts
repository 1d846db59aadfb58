import { readFileSync } from 'node:fs';

/** Resident set size of a process in bytes (`/proc/PID/status`), or 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples the summed RSS of this process and the given children, keeping the peak. */
export class RssSampler {
  readonly #pids: () => number[];
  #timer: NodeJS.Timeout | undefined;
  #peak = 0;
  #peakHost = 0;

  constructor(pids: () => number[], intervalMs = 250) {
    this.#pids = pids;
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  sample(): void {
    const host = process.memoryUsage.rss();
    let total = host;
    for (const pid of this.#pids()) total += rssOf(pid);
    this.#peak = Math.max(this.#peak, total);
    this.#peakHost = Math.max(this.#peakHost, host);
  }

  stop(): { peakRssBytes: number; peakHostRssBytes: number } {
    this.sample();
    clearInterval(this.#timer);
    return { peakRssBytes: this.#peak, peakHostRssBytes: this.#peakHost };
  }
}
