/**
 * FedHC's dynamic client scheduler, as pure logic: jobs wait longest
 * estimated first; a job goes to the worker with the most free capacity
 * that can take its budget (budgets of a worker's running jobs sum to at
 * most one core, and it has a free slot); when the longest job does not fit
 * anywhere, shorter ones that do fit are placed ("fill as capacity frees").
 */
export interface SchedJob {
  jobId: number;
  profile: string;
  /** Share of a core it holds while running (1 when budgets are off). */
  budget: number;
  /** Training samples (x epochs). */
  work: number;
}

export interface WorkerCapacity {
  id: number;
  /** Cores free (1 - budgets of running jobs). */
  free: number;
  freeSlots: number;
}

const EPS = 1e-9;

/** Picks (job, worker) pairs to start now; mutates `workers`' free capacity and slots. */
export function placeJobs<J extends SchedJob>(pending: readonly J[], workers: WorkerCapacity[], estimate: (j: J) => number): { job: J; worker: number }[] {
  const order = [...pending].sort((a, b) => estimate(b) - estimate(a) || a.jobId - b.jobId);
  const out: { job: J; worker: number }[] = [];
  for (const job of order) {
    let best: WorkerCapacity | undefined;
    for (const w of workers) {
      if (w.freeSlots <= 0 || w.free + EPS < job.budget) continue;
      if (best === undefined || w.free > best.free + EPS) best = w;
    }
    if (best === undefined) continue;
    best.free -= job.budget;
    best.freeSlots -= 1;
    out.push({ job, worker: best.id });
  }
  return out;
}

/**
 * Job-time estimates: wall seconds = work x CPU seconds per sample / budget,
 * with CPU seconds per sample measured (running mean over all jobs, a prior
 * until the first result) and a per-profile correction for how far measured
 * wall times stray from that (throttling granularity, contention).
 */
export class JobEstimator {
  #cpuPerSample: number;
  #n = 0;
  readonly #profileFactor = new Map<string, number>();

  constructor(priorCpuPerSample = 1 / 4000) {
    this.#cpuPerSample = priorCpuPerSample;
  }

  estimate(job: SchedJob): number {
    return (job.work * this.#cpuPerSample / Math.max(job.budget, 0.01)) * (this.#profileFactor.get(job.profile) ?? 1);
  }

  observe(job: SchedJob, measured: { cpuSeconds: number; wallSeconds: number }): void {
    if (job.work <= 0) return;
    const before = this.estimate(job);
    const perSample = measured.cpuSeconds / job.work;
    this.#n++;
    this.#cpuPerSample += (perSample - this.#cpuPerSample) / Math.min(this.#n, 50);
    if (before > 0) {
      const ratio = measured.wallSeconds / before;
      const f = this.#profileFactor.get(job.profile) ?? 1;
      this.#profileFactor.set(job.profile, Math.min(10, Math.max(0.1, 0.7 * f + 0.3 * ratio * f)));
    }
  }

  get cpuSecondsPerSample(): number {
    return this.#cpuPerSample;
  }
}
