import { fork, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { runtimeFile } from '../common/runtime-file.js';
import { StrataError } from '../common/strata-error.js';
import { JobEstimator, placeJobs, type SchedJob, type WorkerCapacity } from './scheduler.js';
import type { ClientJob, ClientResult, EnforcerSpec, HostToWorker, AppSpec, WorkerToHost } from './sim-messages.js';

export type PoolState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface WorkerPoolOptions {
  workers: number;
  slotsPerWorker: number;
  spec: AppSpec;
  enforcer: EnforcerSpec;
  logger: Logger;
  /** Time origin of the utilisation timeline (performance.now() ms). */
  t0?: number;
}

interface Submitted {
  job: ClientJob;
  model: { version: number; weights: Float32Array };
  resolve: (r: ClientResult) => void;
  reject: (e: Error) => void;
}

interface WorkerHandle {
  id: number;
  child: ChildProcess;
  pid: number;
  state: 'starting' | 'ready' | 'dead';
  /** Model versions this worker holds. */
  models: Set<number>;
  load: number;
  running: Map<number, { s: Submitted; budget: number; startedAt: number }>;
  ready: Promise<void>;
}

/** One point of the utilisation timeline: seconds since start and the budget each worker is running. */
export interface UtilisationPoint { t: number; load: number[] }

export interface PoolStats {
  workers: number;
  slotsPerWorker: number;
  restarts: number;
  /** Global-model messages sent to workers (at most one per worker per model version, plus replacements). */
  modelSends: number;
  /** Client jobs started (re-runs after a worker death included). */
  jobsStarted: number;
  /** Budget-seconds scheduled / (workers x busy wall seconds). */
  meanUtilisation: number;
  timeline: UtilisationPoint[];
  workerLoadSeconds: number[];
  notes: string[];
}

/**
 * FedHC's process manager: long-lived worker processes (each loads the data
 * and model once and serves many clients), a dynamic scheduler that packs
 * waiting clients by budget as capacity frees, and replacement of a worker
 * that dies (its clients are put back in the queue and re-run elsewhere or
 * on the replacement; the run goes on). Jobs come one at a time, as the
 * round engine assigns clients; each carries the model version it trains
 * from, sent to a worker once.
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
  #pending: Submitted[] = [];
  #state: PoolState = 'idle';
  #restarts = 0;
  #deathsSinceResult = 0;
  #modelSends = 0;
  #jobsStarted = 0;
  #budgetSeconds = 0;
  #busyMs = 0;
  #lastT = -1;

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

  /** Runs one client job; resolves with its result (after re-runs, if a worker died under it). */
  run(job: ClientJob, model: { version: number; weights: Float32Array }): Promise<ClientResult> {
    if (this.#state !== 'running') throw new StrataError('STRATA_ERR_STATE', `worker pool cannot run a job in state ${this.#state}`);
    return new Promise((resolve, reject) => {
      this.#pending.push({ job, model, resolve, reject });
      this.#dispatch();
    });
  }

  #spawn(id: number): WorkerHandle {
    const child = fork(runtimeFile(import.meta.url, 'worker-process'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => { onReady = res; onFail = rej; });
    const h: WorkerHandle = { id, child, pid: child.pid ?? -1, state: 'starting', models: new Set(), load: 0, running: new Map(), ready };
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
        this.#budgetSeconds += (r.budget * (performance.now() - r.startedAt)) / 1000;
        this.#estimator.observe(schedOf(r.s.job, r.budget), m.result);
        r.s.resolve(m.result);
        this.#dispatch();
        return;
      }
      case 'failed': {
        const r = h.running.get(m.jobId);
        if (r === undefined) return;
        h.running.delete(m.jobId);
        this.#record(h, -r.budget);
        r.s.reject(new StrataError('STRATA_ERR_CLIENT_FAILED', `client ${r.s.job.clientId} failed on worker ${h.id}: ${m.message}`, { clientId: r.s.job.clientId }));
        this.#dispatch();
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
    const lost = [...dead.running.values()];
    for (const r of lost) this.#record(dead, -r.budget);
    dead.running.clear();
    if (this.#deathsSinceResult > 3 * this.#o.workers) {
      // Workers die before finishing anything: a broken install, not bad luck. Stop instead of respawning forever.
      const err = new StrataError('STRATA_ERR_WORKER', `simulation workers keep dying (${this.#deathsSinceResult} in a row, last: code ${code}, signal ${signal}); see the worker's stderr above`);
      for (const r of lost) r.s.reject(err);
      for (const s of this.#pending.splice(0)) s.reject(err);
      return;
    }
    this.#log.warn({ worker: dead.id, code, signal, requeued: lost.length }, 'simulation worker died; replacing it and re-running its clients');
    this.#notes.push(`worker ${dead.id} (pid ${dead.pid}) died (code ${code}, signal ${signal}); replaced, ${lost.length} client(s) re-run`);
    this.#pending.push(...lost.map((r) => r.s));
    const replacement = this.#spawn(dead.id);
    this.#workers[this.#workers.indexOf(dead)] = replacement;
    replacement.ready.catch(() => undefined);
    this.#dispatch();
  }

  #packBudget(job: ClientJob): number {
    return this.#o.enforcer.kind === 'off' ? 1 : job.budget;
  }

  #dispatch(): void {
    if (this.#pending.length === 0) return;
    const caps: WorkerCapacity[] = this.#workers.filter((w) => w.state === 'ready').map((w) => ({
      id: w.id, free: 1 - w.load, freeSlots: this.#o.slotsPerWorker - w.running.size,
    }));
    const byId = new Map(this.#pending.map((s) => [s.job.jobId, s]));
    const placed = placeJobs(this.#pending.map((s) => schedOf(s.job, this.#packBudget(s.job))), caps, (j) => this.#estimator.estimate(j));
    for (const { job: sj, worker } of placed) {
      const s = byId.get(sj.jobId)!;
      const h = this.#workers.find((w) => w.id === worker && w.state === 'ready')!;
      if (!h.models.has(s.model.version)) {
        h.child.send({ type: 'model', version: s.model.version, weights: s.model.weights } satisfies HostToWorker);
        h.models.add(s.model.version);
        this.#modelSends++;
      }
      this.#jobsStarted++;
      h.running.set(s.job.jobId, { s, budget: sj.budget, startedAt: performance.now() });
      this.#record(h, sj.budget);
      // Versions below the oldest any waiting or running job needs are dropped by the worker (and resent if ever needed).
      const keepFrom = this.#oldestNeeded(h, s.model.version);
      for (const v of h.models) if (v < keepFrom) h.models.delete(v);
      h.child.send({ type: 'job', job: s.job, keepFrom } satisfies HostToWorker);
    }
    const started = new Set(placed.map((p) => p.job.jobId));
    this.#pending = this.#pending.filter((s) => !started.has(s.job.jobId));
  }

  #oldestNeeded(h: WorkerHandle, version: number): number {
    let oldest = version;
    for (const s of this.#pending) oldest = Math.min(oldest, s.model.version);
    for (const r of h.running.values()) oldest = Math.min(oldest, r.s.model.version);
    return oldest;
  }

  #record(h: WorkerHandle, delta: number): void {
    const t = (performance.now() - this.#t0) / 1000;
    const anyBusy = this.#workers.some((w) => w.load > 1e-9);
    if (this.#lastT >= 0 && anyBusy) this.#busyMs += (t - this.#lastT) * 1000;
    this.#lastT = t;
    h.load = Math.max(0, h.load + delta);
    if (h.load < 1e-9) h.load = 0;
    this.#timeline.push({ t, load: this.#workers.map((w) => Math.round(w.load * 1000) / 1000) });
  }

  /** Sends the worker with this index SIGKILL (fault injection in tests). */
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
    const stopped = new StrataError('STRATA_ERR_STATE', 'worker pool stopped');
    for (const s of this.#pending.splice(0)) s.reject(stopped);
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

function schedOf(job: ClientJob, budget: number): SchedJob {
  return { jobId: job.jobId, profile: job.profile, budget, work: job.work };
}

/** Keeps at most `max` points (every k-th, plus the last), so reports stay small. */
function downsample<T>(points: T[], max: number): T[] {
  if (points.length <= max) return [...points];
  const step = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % step === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]!);
  return out;
}
