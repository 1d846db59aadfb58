import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { StrataError, badValue } from '../../common/strata-error.js';
import { detectEnforcer, removeCgroupTree, type EnforcerInfo } from '../budget.js';
import type { AppSpec } from '../sim-messages.js';
import { BUDGET_REQUESTS, type BudgetRequest } from '../simulation-config.js';
import { WorkerPool } from '../worker-pool.js';
import { checkRedisUrl, connectRedis, redactRedisUrl } from './redis-connection.js';
import {
  DEFAULT_QUEUE, KEY_TTL_SECONDS, QUEUE_PREFIX, RUNS_CHANNEL, decodeJob, decodeModel, encodeResult, runKeys,
  type HostFacts, type RedisJobData, type ResultEnvelope,
} from './redis-jobs.js';
import { logEvent } from '../../common/log-events.js';

export interface WorkerHostOptions {
  /** `redis://HOST:PORT` of the Redis the simulation host dispatches through. */
  redis: string;
  /** BullMQ queue name (default `clients`; the simulation host's `queue` must match). */
  queue?: string;
  /** Name in reports (default HOSTNAME-PID). */
  name?: string;
  /** Worker processes: cores of client budget run at once (default 1). */
  workers?: number;
  /** Most clients one worker process runs at once (default 8; their budgets also sum to at most one core). */
  slots?: number;
  /** How client budgets are enforced (default `auto`: cgroups, else the duty cycle). */
  budget?: BudgetRequest;
  /**
   * A job's lock lasts this long and is renewed at half of it; a host that
   * stops renewing (killed) has its jobs found stalled within about twice
   * this and re-run elsewhere (default 30 s). Every host of a queue should use
   * the same value.
   */
  stallMs?: number;
  logger?: Logger;
}

export type CompiledWorkerHostOptions = Required<Omit<WorkerHostOptions, 'logger'>>;

export function compileWorkerHostOptions(o: WorkerHostOptions): CompiledWorkerHostOptions {
  const int = (name: string, v: number | undefined, def: number, min: number, max: number): number => {
    const x = v ?? def;
    if (!Number.isInteger(x) || x < min || x > max) throw badValue(name, `${x} is not an integer in ${min}..${max}`);
    return x;
  };
  if (o.budget !== undefined && !BUDGET_REQUESTS.includes(o.budget)) throw badValue('budget', `'${String(o.budget)}' is not one of ${BUDGET_REQUESTS.join(', ')}`);
  const queue = o.queue ?? DEFAULT_QUEUE;
  if (queue === '' || queue.includes(':')) throw badValue('queue', `'${queue}' is not a queue name (non-empty, no ':')`);
  return {
    redis: checkRedisUrl(o.redis, 'redis'), queue, name: o.name ?? `${os.hostname()}-${process.pid}`,
    workers: int('workers', o.workers, 1, 1, 256), slots: int('slots', o.slots, 8, 1, 64), budget: o.budget ?? 'auto',
    stallMs: int('stallMs', o.stallMs, 30_000, 500, 3_600_000),
  };
}

export type WorkerHostState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** A worker pool that has loaded one client app's data set and model; the runs of that app share it. */
interface HostedPool {
  spec: string;
  pool: WorkerPool;
  active: number;
}

/** One run this host serves: its pool and the model versions it has read. */
interface HostedRun {
  runId: string;
  hosted: HostedPool;
  /** Version -> the host's own number for it (runs' versions collide) and its weights. */
  models: Map<number, { local: number; weights: Promise<Float32Array> }>;
}

export interface WorkerHostStats {
  name: string;
  jobs: number;
  failed: number;
  runs: number;
}

/**
 * `strata worker`: a long-lived host of simulated clients for simulations
 * that dispatch over Redis (BullMQ). It takes client-training jobs from the
 * queue and runs them on a local worker pool, the same pool, device runtime
 * and per-client budgets a local simulation uses, one pool per run (loaded
 * when the run is announced or its first job comes). Each global model
 * version is read from Redis once and cached; each result goes back as one
 * binary value. A job whose host dies is found stalled by the other hosts
 * (BullMQ) and re-run; the simulation host counts a client's result once.
 */
export class WorkerHost {
  readonly #o: CompiledWorkerHostOptions;
  readonly #log: Logger;
  readonly #runs = new Map<string, Promise<HostedRun>>();
  readonly #pools = new Map<string, Promise<HostedPool>>();
  /** The host's numbering of model versions and jobs across runs (a pool serves several runs). */
  #localModels = 0;
  #localJobs = 0;
  /** Jobs running here by BullMQ id: the same job handed here twice runs once. */
  readonly #running = new Map<string, Promise<void>>();
  #state: WorkerHostState = 'idle';
  #redis: Redis | undefined;
  #subscriber: Redis | undefined;
  #worker: Worker | undefined;
  #enforcer: EnforcerInfo | undefined;
  #jobs = 0;
  #failed = 0;
  #runsServed = 0;

  constructor(options: WorkerHostOptions) {
    this.#o = Object.freeze(compileWorkerHostOptions(options));
    this.#log = (options.logger ?? pino({ level: 'warn' })).child({ component: 'worker-host', host: this.#o.name });
  }

  get state(): WorkerHostState { return this.#state; }
  get options(): CompiledWorkerHostOptions { return this.#o; }
  get enforcer(): EnforcerInfo | undefined { return this.#enforcer; }
  /** Process ids of this host's worker processes (every run's pool). */
  async pids(): Promise<number[]> {
    const pools = await Promise.all([...this.#pools.values()].map((p) => p.catch(() => undefined)));
    return pools.flatMap((p) => p?.pool.pids ?? []);
  }

  stats(): WorkerHostStats {
    return { name: this.#o.name, jobs: this.#jobs, failed: this.#failed, runs: this.#runsServed };
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new StrataError('STRATA_ERR_STATE', `worker host cannot start in state ${this.#state}`, { state: this.#state });
    this.#state = 'starting';
    try {
      this.#redis = await connectRedis(this.#o.redis, `strata-worker-host-${this.#o.name}`);
      this.#enforcer = detectEnforcer(this.#o.budget, `strata-sim-${process.pid}-${randomBytes(3).toString('hex')}`, this.#o.workers * this.#o.slots);
      this.#subscriber = this.#redis.duplicate();
      this.#subscriber.on('error', () => undefined);
      this.#subscriber.on('message', (_channel: string, runId: string) => {
        // Load the run's data and model now, before its first job comes.
        this.#hostedRun(runId).catch((err: unknown) => this.#log.warn({ runId, err: (err as Error).message }, 'cannot prepare the announced run'));
      });
      await this.#subscriber.subscribe(RUNS_CHANNEL);
      this.#worker = new Worker(this.#o.queue, (job: Job<RedisJobData>) => this.#process(job), {
        connection: this.#redis, prefix: QUEUE_PREFIX, concurrency: this.#o.workers * this.#o.slots, name: this.#o.name,
        lockDuration: this.#o.stallMs, stalledInterval: this.#o.stallMs,
        // A job is re-run however many hosts die under it: a dead host is not the job's fault.
        maxStalledCount: 1000,
      });
      this.#worker.on('error', (err) => this.#log.warn({ err: err.message }, 'queue worker error'));
      await this.#worker.waitUntilReady();
    } catch (err) {
      await this.#release();
      this.#state = 'stopped';
      throw err;
    }
    this.#state = 'running';
    this.#log.info({ ...logEvent('worker-host.ready'), redis: redactRedisUrl(this.#o.redis), queue: this.#o.queue, workers: this.#o.workers, slots: this.#o.slots, enforcer: this.#enforcer.kind }, 'worker host ready');
  }

  async #process(job: Job<RedisJobData>): Promise<string> {
    const id = job.id ?? job.data.key;
    const same = this.#running.get(id);
    if (same !== undefined) {
      await same;
      return 'ok';
    }
    const done = this.#runJob(job);
    this.#running.set(id, done);
    try {
      await done;
    } finally {
      this.#running.delete(id);
    }
    return 'ok';
  }

  async #runJob(job: Job<RedisJobData>): Promise<void> {
    const { runId, key } = job.data;
    const keys = runKeys(runId);
    const cj = decodeJob(job.data.job);
    const host: HostFacts = {
      name: this.#o.name, cores: this.#o.workers, startedAtMs: Date.now(), stalled: job.stalledCounter ?? 0,
      load: this.#enforcer?.kind === 'off' ? 1 : cj.budget,
    };
    let envelope: ResultEnvelope;
    let frame: Uint8Array | null = null;
    let run: HostedRun | undefined;
    try {
      run = await this.#hostedRun(runId);
      run.hosted.active++;
      const model = this.#model(run, cj.assignment.modelVersion);
      const weights = await model.weights;
      const local = { ...cj, jobId: ++this.#localJobs, model: model.local };
      const { frame: f, ...result } = await run.hosted.pool.run(local, { version: model.local, weights });
      frame = f;
      envelope = { ok: true, host, result: { ...result, jobId: cj.jobId, host: this.#o.name } };
      this.#jobs++;
    } catch (err) {
      // A host shutting down leaves the job to another (BullMQ finds it stalled); anything else is the client's failure, reported.
      if (this.#state === 'stopping' || this.#state === 'stopped') throw err;
      envelope = { ok: false, host, message: err instanceof Error ? err.message : String(err) };
      this.#failed++;
    } finally {
      if (run !== undefined) run.hosted.active--;
    }
    const redis = this.#redis!;
    await redis.multi()
      .set(keys.result(key), encodeResult(envelope, frame), 'EX', KEY_TTL_SECONDS)
      .rpush(keys.done, key).expire(keys.done, KEY_TTL_SECONDS)
      .exec();
    this.#log.debug({ runId, key, ok: envelope.ok }, 'client job done');
    if (!envelope.ok) throw new StrataError('STRATA_ERR_CLIENT_FAILED', envelope.message, { clientId: cj.clientId });
  }

  /** A run this host serves: its client app's pool (shared by the runs of the same app: loaded once, warm for the next run). */
  #hostedRun(runId: string): Promise<HostedRun> {
    let run = this.#runs.get(runId);
    if (run !== undefined) return run;
    run = (async () => {
      const specJson = await this.#redis!.get(runKeys(runId).spec);
      if (specJson === null) throw new StrataError('STRATA_ERR_STATE', `run ${runId} is not in Redis (its simulation host has ended it)`, { runId });
      const hosted = await this.#pool(specJson);
      this.#runsServed++;
      this.#log.info({ runId }, 'serving a run');
      // Older runs' model caches go (their versions were read once; a late job reads its version again).
      for (const [other, r] of this.#runs) if (other !== runId) void r.then((o) => o.models.clear(), () => undefined);
      return { runId, hosted, models: new Map() };
    })();
    this.#runs.set(runId, run);
    run.catch(() => { if (this.#runs.get(runId) === run) this.#runs.delete(runId); });
    // A long-lived host forgets old runs (a job of one that comes back finds it again).
    for (const old of [...this.#runs.keys()].slice(0, Math.max(0, this.#runs.size - 16))) this.#runs.delete(old);
    return run;
  }

  /** The pool of a client app (its `AppSpec` JSON); pools of other apps with nothing running are stopped first. */
  #pool(specJson: string): Promise<HostedPool> {
    let p = this.#pools.get(specJson);
    if (p !== undefined) return p;
    p = (async () => {
      for (const [other, q] of this.#pools) {
        const h = await q.catch(() => undefined);
        if (h === undefined || h.active === 0) {
          this.#pools.delete(other);
          await h?.pool.stop();
        }
      }
      const spec = JSON.parse(specJson) as AppSpec;
      const enforcer = this.#enforcer!;
      const pool = new WorkerPool({ workers: this.#o.workers, slotsPerWorker: this.#o.slots, spec, enforcer: { kind: enforcer.kind, root: enforcer.root }, logger: this.#log });
      await pool.start();
      this.#log.info({ clientApp: spec.clientApp, dataset: spec.dataset, model: spec.model }, 'client app loaded');
      return { spec: specJson, pool, active: 0 };
    })();
    this.#pools.set(specJson, p);
    p.catch(() => { if (this.#pools.get(specJson) === p) this.#pools.delete(specJson); });
    return p;
  }

  /** A model version, read from Redis once per host under a number of the host's own; the newest few are kept. */
  #model(run: HostedRun, version: number): { local: number; weights: Promise<Float32Array> } {
    let m = run.models.get(version);
    if (m === undefined) {
      const weights = this.#redis!.getBuffer(runKeys(run.runId).model(version)).then((data) => {
        if (data === null) throw new StrataError('STRATA_ERR_STATE', `run ${run.runId}: model version ${version} is not in Redis`, { runId: run.runId, version });
        return decodeModel(data);
      });
      m = { local: ++this.#localModels, weights };
      run.models.set(version, m);
      weights.catch(() => run.models.delete(version));
      const versions = [...run.models.keys()].sort((a, b) => a - b);
      for (const v of versions.slice(0, Math.max(0, versions.length - 4))) run.models.delete(v);
    }
    return m;
  }

  /** Takes no more jobs, lets the running ones finish, then stops every pool. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    await this.#worker?.close().catch(() => undefined);
    await this.#release();
    this.#state = 'stopped';
  }

  async #release(): Promise<void> {
    for (const p of this.#pools.values()) await (await p.catch(() => undefined))?.pool.stop();
    this.#pools.clear();
    this.#runs.clear();
    await this.#subscriber?.quit().catch(() => undefined);
    await this.#redis?.quit().catch(() => undefined);
    if (this.#enforcer?.root !== null && this.#enforcer?.root !== undefined) removeCgroupTree(this.#enforcer.root);
  }
}
