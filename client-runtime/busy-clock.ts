/**
 * How compute is timed on this host, for the diagnostics reports keep beside
 * the counted work (device seconds and joules never come from here). Wall
 * time counts the time the process sat descheduled while other work ran, so
 * busy CPU time is measured instead where the OS exposes it.
 * - `thread-cpu`: CPU time of the calling thread (Linux
 *   `/proc/thread-self/schedstat`, ns). The wasm and cpu backends train on the
 *   main thread; the swap worker and the stream writer are other threads.
 * - `process-cpu`: user + system CPU of every thread (`process.cpuUsage()`),
 *   for tfjs-node, whose kernels run on TensorFlow's own thread pool.
 * - `wall`: `performance.now()`, where neither is available.
 */
import { readFileSync } from 'node:fs';

export type BusyClockSource = 'thread-cpu' | 'process-cpu' | 'wall';

export interface BusyClock {
  readonly source: BusyClockSource;
  /** Monotonic seconds of busy time so far (only differences mean anything). */
  seconds(): number;
}

const SCHEDSTAT = '/proc/thread-self/schedstat';

function threadCpuSeconds(): number {
  return Number(readFileSync(SCHEDSTAT, 'utf8').split(' ', 1)[0]) / 1e9;
}

function threadCpuAvailable(): boolean {
  try {
    return Number.isFinite(threadCpuSeconds());
  } catch {
    return false;
  }
}

/** The busy clock for work done by `backend` (the tfjs backend's name), best available first. */
export function hostBusyClock(backend: string = 'wasm', prefer?: BusyClockSource): BusyClock {
  const source: BusyClockSource = prefer ?? (backend === 'tfjs-node' ? 'process-cpu' : threadCpuAvailable() ? 'thread-cpu' : 'process-cpu');
  switch (source) {
    case 'thread-cpu':
      return Object.freeze({ source, seconds: threadCpuSeconds });
    case 'process-cpu':
      return Object.freeze({
        source,
        seconds: () => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1e6;
        },
      });
    default:
      return Object.freeze({ source: 'wall' as const, seconds: () => performance.now() / 1000 });
  }
}
