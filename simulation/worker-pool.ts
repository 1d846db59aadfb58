import { fork, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { runtimeFile } from '../common/runtime-file.js';
import { StrataError } from '../common/strata-error.js';
import { JobEstimator, placeJobs, type WorkerCapacity } from './scheduler.js';
import type { ClientJob, ClientResult, EnforcerSpec, HostToWorker, ModelSpec, WorkerToHost } from './sim-messages.js';

export type PoolState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface WorkerPoolOptions {
  workers: number;
  slotsPerWorker: number;
  spec: ModelSpec;
  enforcer: EnforcerSpec;
  logger: Logger;
  /** Time origin of the utilisation timeline (performance.now() ms). */
  t0?: number;
}

interface WorkerHandle {
  id: number;
  child: ChildProcess;
  pid: number;
  state: 'starting' | 'ready' | 'dead';
  /** Round whose model this worker holds. */
  modelRound: number;
  load: number;
  running: Map<number, { job: ClientJob; budget: number; startedAt: number }>;
  ready: Promise<void>;
}

/** One point of the utilisation timeline: seconds since start and the budget each worker is running. */
export interface UtilisationPoint { t: number; load: number[] }

export interface PoolStats {
  workers: number;
  slotsPerWorker: number;
  restarts: number;
  /** Global-model messages sent to workers (at most one per worker per round, plus replacements). */
  modelSends: number;
  /** Client jobs started (re-runs after a worker death included). */
  jobsStarted: number;
  /** Budget-seconds scheduled / (workers x busy wall seconds). */
  meanUtilisation: number;
  timeline: UtilisationPoint[];
  workerLoadSeconds: number[];
  notes: string[];
}

interface RoundRun {
  round: number;
  weights: Float32Array;
  pending: ClientJob[];
  results: ClientResult[];
  expected: number;
  resolve: (r: ClientResult[]) => void;
  reject: (e: Error) => void;
}

/**
 * FedHC's process manager: long-lived worker processes (each loads the data
 * and model once and serves many clients), a dynamic scheduler that packs
 * each round's clients by budget, and replacement of a worker that dies
 * (its clients are put back in the queue and re-run elsewhere or on the
 * replacement; the run goes on).
 */
export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #workers: WorkerHandle[] = [];
  readonly #estimator = new JobEstimator();
  readonly #timeline: UtilisationPoint[] = [];
  readonly #notes: string[] = [];
  readonly #loadSeconds: number[] = [];
  readonly #t0: number;
  #state: PoolState = 'idle';
  #round: RoundRun | undefined;
  #restarts = 0;
  #deathsSinceResult = 0;
  #modelSends = 0;
  #jobsStarted = 0;
  #budgetSeconds = 0;
  #busyMs = 0;

  constructor(options: WorkerPoolOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'worker-pool' });
    this.#t0 = options.t0 ?? performance.now();
  }

  get state(): PoolState { return this.#state; }
  get restarts(): number { return this.#restarts; }
  get estimator(): JobEstimator { return this.#estimator; }
  /** Process ids of the live workers (for RSS sampling and fault tests). */
  get pids(): number[] { return this.#workers.filter((w) => w.state !== 'dead').map((w) => w.pid); }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new StrataError('STRATA_ERR_STATE', `worker pool cannot start in state ${this.#state}`);
    this.#state = 'starting';
    for (let i = 0; i < this.#o.workers; i++) this.#workers.push(this.#spawn(i));
    await Promise.all(this.#workers.map((w) => w.ready));
    this.#state = 'running';
  }

  #spawn(id: number): WorkerHandle {
    const child = fork(runtimeFile(import.meta.url, 'worker-process'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => { onReady = res; onFail = rej; });
    const h: WorkerHandle = { id, child, pid: child.pid ?? -1, state: 'starting', modelRound: -1, load: 0, running: new Map(), ready };
    child.on('message', (m: WorkerToHost) => this.#onMessage(h, m, onReady));
    child.on('exit', (code, signal) => {
      const wasStarting = h.state === 'starting';
      h.state = 'dead';
      if (this.#state === 'stopping' || this.#state === 'stopped') return;
      if (wasStarting && this.#state === 'starting') {
        onFail(new StrataError('STRATA_ERR_WORKER', `simulation worker ${id} exited during start-up (code ${code}, signal ${signal})`));
        return;
      }
      this.#onWorkerDeath(h, code, signal);
    });
    child.on('error', (err) => this.#log.warn({ worker: id, err: err.message }, 'worker process error'));
    const init: HostToWorker = { type: 'init', workerId: id, spec: this.#o.spec, enforcer: this.#o.enforcer, slots: this.#o.slotsPerWorker };
    child.send(init);
    return h;
  }

  #onMessage(h: WorkerHandle, m: WorkerToHost, onReady: () => void): void {
    switch (m.type) {
      case 'ready':
        h.state = 'ready';
        this.#loadSeconds.push(m.loadSeconds);
        onReady();
        this.#dispatch();
        return;
      case 'started':
        return;
      case 'result': {
        const r = h.running.get(m.result.jobId);
        if (r === undefined) return;
        this.#deathsSinceResult = 0;
        h.running.delete(m.result.jobId);
        this.#record(h, -r.budget);
        const now = performance.now();
        this.#budgetSeconds += (r.budget * (now - r.startedAt)) / 1000;
        this.#estimator.observe(schedOf(r.job, r.budget), m.result);
        const round = this.#round;
        if (round !== undefined && round.round === m.result.round) {
          round.results.push(m.result);
          if (round.results.length === round.expected) {
            this.#round = undefined;
            round.resolve(round.results);
            return;
          }
        }
        this.#dispatch();
        return;
      }
      case 'failed': {
        const round = this.#round;
        this.#round = undefined;
        round?.reject(new StrataError('STRATA_ERR_CLIENT_FAILED', `client job ${m.jobId} failed on worker ${h.id}: ${m.message}`));
        return;
      }
      case 'note':
        this.#notes.push(m.message);
        this.#log.warn({ worker: h.id }, m.message);
    }
  }

  #onWorkerDeath(dead: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.#restarts++;
    this.#deathsSinceResult++;
    if (this.#deathsSinceResult > 3 * this.#o.workers) {
      // Workers die before finishing anything: a broken install, not bad luck. Stop instead of respawning forever.
      const round = this.#round;
      this.#round = undefined;
      round?.reject(new StrataError('STRATA_ERR_WORKER', `simulation workers keep dying (${this.#deathsSinceResult} in a row, last: code ${code}, signal ${signal}); see the worker's stderr above`));
      return;
    }
    const lost = [...dead.running.values()];
    for (const r of lost) this.#record(dead, -r.budget);
    dead.running.clear();
    this.#log.warn({ worker: dead.id, code, signal, requeued: lost.length }, 'simulation worker died; replacing it and re-running its clients');
    this.#notes.push(`worker ${dead.id} (pid ${dead.pid}) died (code ${code}, signal ${signal}); replaced, ${lost.length} client(s) re-run`);
    if (this.#round !== undefined) for (const r of lost) if (r.job.round === this.#round.round) this.#round.pending.push(r.job);
    const replacement = this.#spawn(dead.id);
    const idx = this.#workers.indexOf(dead);
    this.#workers[idx] = replacement;
    replacement.ready.catch(() => undefined);
    this.#dispatch();
  }

  /** Runs one round's jobs to completion; each worker gets the round's model once. */
  runRound(round: number, weights: Float32Array, jobs: ClientJob[]): Promise<ClientResult[]> {
    if (this.#state !== 'running') throw new StrataError('STRATA_ERR_STATE', `worker pool cannot run a round in state ${this.#state}`);
    if (jobs.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#round = { round, weights, pending: [...jobs], results: [], expected: jobs.length, resolve, reject };
      this.#dispatch();
    });
  }

  #packBudget(job: ClientJob): number {
    return this.#o.enforcer.kind === 'off' ? 1 : job.budget;
  }

  #dispatch(): void {
    const round = this.#round;
    if (round === undefined || round.pending.length === 0) return;
    const caps: WorkerCapacity[] = this.#workers.filter((w) => w.state === 'ready').map((w) => ({
      id: w.id, free: 1 - w.load, freeSlots: this.#o.slotsPerWorker - w.running.size,
    }));
    const byId = new Map(round.pending.map((j) => [j.jobId, j]));
    const placed = placeJobs(round.pending.map((j) => schedOf(j, this.#packBudget(j))), caps, (j) => this.#estimator.estimate(j));
    for (const { job: sj, worker } of placed) {
      const job = byId.get(sj.jobId)!;
      const h = this.#workers.find((w) => w.id === worker && w.state === 'ready')!;
      if (h.modelRound !== round.round) {
        h.child.send({ type: 'model', round: round.round, weights: round.weights } satisfies HostToWorker);
        h.modelRound = round.round;
        this.#modelSends++;
      }
      this.#jobsStarted++;
      h.running.set(job.jobId, { job, budget: sj.budget, startedAt: performance.now() });
      this.#record(h, sj.budget);
      h.child.send({ type: 'job', job } satisfies HostToWorker);
    }
    const started = new Set(placed.map((p) => p.job.jobId));
    round.pending = round.pending.filter((j) => !started.has(j.jobId));
  }

  #lastT = -1;

  #record(h: WorkerHandle, delta: number): void {
    const t = (performance.now() - this.#t0) / 1000;
    const anyBusy = this.#workers.some((w) => w.load > 1e-9);
    if (this.#lastT >= 0 && anyBusy) this.#busyMs += (t - this.#lastT) * 1000;
    this.#lastT = t;
    h.load = Math.max(0, h.load + delta);
    if (h.load < 1e-9) h.load = 0;
    this.#timeline.push({ t, load: this.#workers.map((w) => Math.round(w.load * 1000) / 1000) });
  }

  /** Sends the worker with this index SIGKILL (fault-injection in tests and `--chaos`). */
  killWorker(index: number): number | null {
    const w = this.#workers[index];
    if (w === undefined || w.state === 'dead') return null;
    w.child.kill('SIGKILL');
    return w.pid;
  }

  /** Jobs currently running on each worker (fault tests wait for some). */
  runningCounts(): number[] {
    return this.#workers.map((w) => w.running.size);
  }

  stats(): PoolStats {
    const busy = this.#busyMs / 1000;
    return {
      workers: this.#o.workers,
      slotsPerWorker: this.#o.slotsPerWorker,
      restarts: this.#restarts,
      modelSends: this.#modelSends,
      jobsStarted: this.#jobsStarted,
      meanUtilisation: busy > 0 ? this.#budgetSeconds / (this.#o.workers * busy) : 0,
      timeline: downsample(this.#timeline, 400),
      workerLoadSeconds: [...this.#loadSeconds],
      notes: [...this.#notes],
    };
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    await Promise.all(this.#workers.map((w) => new Promise<void>((resolve) => {
      if (w.state === 'dead' || w.child.exitCode !== null) return resolve();
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 5000);
      w.child.once('exit', () => { clearTimeout(timer); resolve(); });
      try {
        w.child.send({ type: 'shutdown' } satisfies HostToWorker);
      } catch {
        w.child.kill('SIGKILL');
      }
    })));
    this.#state = 'stopped';
  }
}

function schedOf(job: ClientJob, budget: number): { jobId: number; profile: string; budget: number; work: number } {
  return { jobId: job.jobId, profile: job.profile, budget, work: job.indices.length * job.train.epochs };
}

/** Keeps at most `max` points (every k-th, plus the last), so reports stay small. */
function downsample<T>(points: T[], max: number): T[] {
  if (points.length <= max) return [...points];
  const step = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % step === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]!);
  return out;
}
