import { readFileSync, readlinkSync } from 'node:fs';
import { sleepSync } from '../client-runtime/sleep.js';

/**
 * CPU time of the calling thread, in seconds. Linux: `/proc/thread-self/schedstat`
 * (nanoseconds on the CPU), else `/proc/thread-self/stat` (clock ticks);
 * elsewhere the process's CPU time, which equals the thread's only when one
 * thread works.
 */
export function threadCpuSeconds(): number {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    if (Number.isFinite(ns)) return ns / 1e9;
  } catch { /* fall through */ }
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { /* fall through */ }
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The calling thread's kernel thread id (`/proc/thread-self` -> `PID/task/TID`), or null off Linux. */
export function threadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) ? tid : null;
  } catch {
    return null;
  }
}

/**
 * The duty-cycle budget: after each unit of work, the thread sleeps until
 * its CPU time since `start()` is at most `share` of the wall time since then.
 * Sleeping blocks the thread (Atomics.wait), which is what a slower device
 * would do to it; the event loop of a slot thread has nothing else to run.
 */
export class DutyCycleThrottle {
  readonly share: number;
  #cpu0 = 0;
  #wall0 = 0;
  #slept = 0;

  constructor(share: number) {
    this.share = share;
  }

  start(): void {
    this.#cpu0 = threadCpuSeconds();
    this.#wall0 = performance.now();
    this.#slept = 0;
  }

  /** Sleeps as long as needed to bring the CPU share down to the budget. */
  pace(): void {
    if (this.share >= 1) return;
    const cpuMs = (threadCpuSeconds() - this.#cpu0) * 1000;
    const wallMs = performance.now() - this.#wall0;
    const owed = cpuMs / this.share - wallMs;
    if (owed > 0.5) {
      sleepSync(owed);
      this.#slept += owed;
    }
  }

  get sleptMs(): number {
    return this.#slept;
  }
}
