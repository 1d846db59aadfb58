import { readFileSync } from 'node:fs';
import os from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { StrataError, badValue } from '../common/strata-error.js';

/** `auto`, or a thread count. */
export type ThreadsRequest = number | 'auto';

/** XNNPACK's pool in tfjs's wasm build holds at most 8 threads. */
export const MAX_TRAINING_THREADS = 8;

export function parseThreadsRequest(value: string | number | undefined, source = 'threads'): ThreadsRequest {
  if (value === undefined) return 'auto';
  const v = String(value).trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw badValue(source, `invalid value '${value}' (expected auto or an integer >= 1)`, { value: String(value) });
  }
  return Math.min(n, MAX_TRAINING_THREADS);
}

/** The CPU quota of this process's cgroup in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), or undefined when unlimited or unreadable. */
export function cgroupCpuLimit(): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  let limit: number | undefined;
  const take = (quota: number, period: number): void => {
    if (quota > 0 && period > 0) limit = Math.min(limit ?? Infinity, quota / period);
  };
  for (const line of lines) {
    const [, controllers, group] = line.split(':');
    if (group === undefined || controllers === undefined) continue;
    if (controllers === '') {
      const max = read(`/sys/fs/cgroup${group}/cpu.max`)?.split(/\s+/);
      if (max !== undefined && max[0] !== 'max') take(Number(max[0]), Number(max[1]));
    } else if (controllers.split(',').includes('cpu')) {
      const quota = Number(read(`/sys/fs/cgroup/cpu${group}/cpu.cfs_quota_us`) ?? read(`/sys/fs/cgroup/cpu,cpuacct${group}/cpu.cfs_quota_us`));
      const period = Number(read(`/sys/fs/cgroup/cpu${group}/cpu.cfs_period_us`) ?? read(`/sys/fs/cgroup/cpu,cpuacct${group}/cpu.cfs_period_us`));
      take(quota, period);
    }
  }
  return limit;
}

/** Cores this process may run on: CPU affinity (`os.availableParallelism`), lowered by a cgroup CPU quota. */
export function availableCores(): number {
  const affinity = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const quota = cgroupCpuLimit();
  return Math.max(1, quota === undefined ? affinity : Math.min(affinity, Math.ceil(quota)));
}

export interface TrainingThreadsOptions {
  /**
   * Other threads this process keeps busy while it trains (simulation slot
   * threads that train beside this one, a swap worker that is mostly
   * computing, ...). Default 0. Threads that mostly wait (an I/O writer,
   * the event loop between steps) do not count.
   */
  busyThreads?: number;
  /** Cores to share. Default `availableCores()`. */
  cores?: number;
}

/**
 * How many threads one training loop should use: the cores left once the
 * process's other busy threads have theirs, at least 1, at most 8.
 * A process that runs K training loops at once (K slot threads) gives each
 * `trainingThreads({ busyThreads: K - 1 })`, or exactly 1 when each slot
 * is held to a per-thread CPU budget.
 */
export function trainingThreads(options: TrainingThreadsOptions = {}): number {
  const cores = options.cores ?? availableCores();
  const busy = options.busyThreads ?? 0;
  if (!(busy >= 0) || !Number.isFinite(busy)) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `busyThreads must be a number >= 0, got ${busy}`, { option: 'busyThreads' });
  }
  return Math.max(1, Math.min(MAX_TRAINING_THREADS, Math.floor(cores - busy)));
}

/** What `threads: 'auto'` resolved to, and why. */
export interface AutoThreads {
  threads: number;
  /** Cores this process may use. */
  cores: number;
  /** The machine's 1-minute load average when it was decided (0 where the OS has none). */
  loadAverage: number;
  /** Why fewer threads than cores, if so. */
  note?: string;
}

/**
 * What `threads: 'auto'` means: on a process's main thread, the cores it
 * may use less the ones the machine is already keeping busy (the 1-minute
 * load average, rounded down), at least 1; inside a worker thread, 1, as
 * Strata's worker threads are budgeted simulation slots (a worker that
 * wants more says so). The load counts because XNNPACK's pool waits for
 * every thread at every kernel: one pool thread that has to queue for a
 * busy core stalls each kernel by a scheduler time slice, and two threads
 * then train slower than one (measured here: a 64x64x64 product took
 * 0.6-0.9 ms with two threads on a loaded machine, 0.05-0.1 ms with one;
 * PyTorch's OpenMP pool does the same). `busyThreads` are threads of this
 * process that compute beside the training loop (a CarM swap worker); they
 * keep their cores too. Data-parallel steps (wasm's default with more than
 * one thread) sum the threads' gradients, so results depend on the thread
 * count within float rounding; the same count gives the same bits.
 */
export function autoTrainingThreads(options: { busyThreads?: number } = {}): AutoThreads {
  const cores = availableCores();
  const loadAverage = os.loadavg()[0] ?? 0;
  if (!isMainThread) return { threads: 1, cores, loadAverage, note: 'auto: 1 thread inside a worker thread' };
  const own = options.busyThreads ?? 0;
  const threads = trainingThreads({ cores, busyThreads: Math.floor(loadAverage) + own });
  const capped = Math.min(cores, MAX_TRAINING_THREADS);
  if (threads >= capped) return { threads, cores, loadAverage };
  const why = [
    ...(own > 0 ? [`${own} busy thread(s) of its own`] : []),
    ...(Math.floor(loadAverage) > 0 ? [`1-minute load average ${loadAverage.toFixed(2)} when the backend started`] : []),
  ];
  return { threads, cores, loadAverage, note: `auto: ${threads} of ${cores} cores (${why.join('; ')})` };
}

/** `autoTrainingThreads().threads`. */
export function defaultTrainingThreads(): number {
  return autoTrainingThreads().threads;
}
