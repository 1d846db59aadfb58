import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StrataError } from '../../common/strata-error.js';
import type { JobResultStore } from '../../storage-tier/job-result-store.js';
import type { ClientJob, ClientResult, AppSpec } from '../sim-messages.js';
import type { UtilisationPoint } from '../worker-pool.js';
import { checkRedisUrl, connectRedis, redactRedisUrl } from './redis-connection.js';
import {
  DEFAULT_QUEUE, KEY_TTL_SECONDS, QUEUE_PREFIX, RUNS_CHANNEL, decodeResult, encodeJob, jobKey, runKeys,
  type HostFacts, type RedisJobData, type RunKeys,
} from './redis-jobs.js';

/** Where a simulation dispatches its clients instead of local worker processes: worker hosts (`strata worker`) on a Redis. */
export interface RedisDispatchOptions {
  /** `redis://HOST:PORT` (the worker hosts' `--redis`). */
  url: string;
  /** BullMQ queue name (default `clients`; the worker hosts' `--queue`). */
  queue?: string;
}

/** One worker host as the report shows it. */
export interface HostStats {
  host: string;
  /** Cores of client budget it runs at once (its worker processes). */
  cores: number;
  /** Results it delivered that counted. */
  jobs: number;
  /** Distinct clients it ran. */
  clients: number;
  /** Of its jobs, those it ran after another host died under them. */
  reruns: number;
  cpuSeconds: number;
  wallSeconds: number;
  /** Its clients' CPU time / their wall time: the share they really got. */
  measuredShare: number | null;
  /** Budget-seconds it ran / (cores x the run's dispatch span). */
  utilisation: number;
}

export interface RedisDispatchStats {
  redis: string;
  queue: string;
  runId: string;
  /** Worker hosts that delivered results (the utilisation timeline has one line per host, in this order). */
  workers: number;
  hosts: HostStats[];
  /** Jobs put on the queue (a resumed run's recorded results are not). */
  jobsStarted: number;
  /** Results taken from the run directory's checkpoint instead of running again (a resumed run). */
  replayed: number;
  /** Results of jobs that ran again after their host died (BullMQ found them stalled). */
  reruns: number;
  /** Results that came for a job already counted (dropped). */
  duplicates: number;
  /** Global model versions written to Redis (once each). */
  modelPublishes: number;
  /** Budget-seconds run / (cores of every host x the dispatch span). */
  meanUtilisation: number;
  timeline: UtilisationPoint[];
}

interface Waiting {
  job: ClientJob;
  version: number;
  resolve: (r: ClientResult) => void;
  reject: (e: Error) => void;
}

interface HostAcc { facts: HostFacts; jobs: number; clients: Set<string>; reruns: number; cpu: number; wall: number; budgetSeconds: number }

/**
 * A simulation's client jobs on worker hosts over Redis (BullMQ): each job
 * goes on the queue under the id of its round, client and job number; each
 * global model version is written to Redis once (worker hosts cache it);
 * results come back as binary values and are counted once per job (a job
 * that ran twice, because its first host died after finishing or BullMQ
 * re-ran it, is counted the first time). With a checkpoint, every result is
 * committed to the run directory before it is used, and a result already
 * there is used instead of running the job again.
 */
export class RedisDispatcher {
  readonly #url: string;
  readonly #queueName: string;
  readonly #runId: string;
  readonly #spec: AppSpec;
  readonly #log: Logger;
  readonly #keys: RunKeys;
  readonly #checkpoint: JobResultStore | undefined;
  readonly #recorded = new Map<string, ClientResult>();
  readonly #waiting = new Map<string, Waiting>();
  /** Results that came before their job was asked for (a resumed run: its first life queued them). */
  readonly #early = new Map<string, Buffer>();
  /** Jobs counted in this life: a second result for one is a duplicate. */
  readonly #counted = new Set<string>();
  readonly #published = new Map<number, Promise<void>>();
  readonly #needs = new Map<number, number>();
  readonly #hosts = new Map<string, HostAcc>();
  readonly #spans: { host: string; start: number; end: number; load: number }[] = [];
  readonly #epoch0: number;
  #redis: Redis | undefined;
  #blocking: Redis | undefined;
  #queue: Queue | undefined;
  #state: 'idle' | 'starting' | 'running' | 'stopped' = 'idle';
  #pump: Promise<void> | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #lastResultAt = performance.now();
  #firstSubmit: number | null = null;
  #lastResult: number | null = null;
  #jobsStarted = 0;
  #replayed = 0;
  #reruns = 0;
  #duplicates = 0;
  #modelPublishes = 0;

  constructor(o: RedisDispatchOptions & { runId: string; spec: AppSpec; logger: Logger; t0?: number; checkpoint?: JobResultStore }) {
    this.#url = checkRedisUrl(o.url, 'redis.url');
    this.#queueName = o.queue ?? DEFAULT_QUEUE;
    if (this.#queueName === '' || this.#queueName.includes(':')) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `redis.queue: '${this.#queueName}' is not a queue name (non-empty, no ':')`, { option: 'redis.queue' });
    }
    this.#runId = o.runId;
    this.#spec = o.spec;
    this.#log = o.logger.child({ component: 'redis-dispatcher', runId: o.runId });
    this.#keys = runKeys(o.runId);
    this.#checkpoint = o.checkpoint;
    this.#epoch0 = Date.now() - (performance.now() - (o.t0 ?? performance.now()));
    for (const r of o.checkpoint?.results() ?? []) {
      this.#recorded.set(r.jobKey, { ...(JSON.parse(r.header) as Omit<ClientResult, 'frame'>), frame: r.frame });
    }
  }

  get runId(): string { return this.#runId; }
  /** Results the checkpoint holds (a resumed run replays them). */
  get recordedResults(): number { return this.#recorded.size; }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new StrataError('STRATA_ERR_STATE', `Redis dispatcher cannot start in state ${this.#state}`, { state: this.#state });
    this.#state = 'starting';
    this.#redis = await connectRedis(this.#url, `strata-simulation-${this.#runId}`);
    this.#blocking = this.#redis.duplicate();
    this.#blocking.on('error', () => undefined);
    this.#queue = new Queue(this.#queueName, { connection: this.#redis, prefix: QUEUE_PREFIX });
    await this.#queue.waitUntilReady();
    await this.#redis.set(this.#keys.spec, JSON.stringify(this.#spec), 'EX', KEY_TTL_SECONDS);
    // Worker hosts listening load the run's data and model now.
    await this.#redis.publish(RUNS_CHANNEL, this.#runId);
    const hosts = await this.#queue.getWorkersCount().catch(() => -1);
    if (hosts === 0) this.#log.warn({ queue: this.#queueName }, 'no worker host is connected to the queue yet; client jobs wait for one (start `strata worker --redis URL`)');
    this.#state = 'running';
    this.#pump = this.#collect();
    this.#watchdog = setInterval(() => {
      if (this.#waiting.size > 0 && performance.now() - this.#lastResultAt > 30_000) {
        void this.#queue?.getWorkersCount().then((n) => this.#log.warn({ waiting: this.#waiting.size, workerHosts: n }, 'client jobs waiting and no result for 30 s'), () => undefined);
      }
    }, 30_000);
    this.#watchdog.unref();
  }

  /** Runs one client job on some worker host; resolves with its result (counted once, however often it ran). */
  run(job: ClientJob, model: { version: number; weights: Float32Array }): Promise<ClientResult> {
    if (this.#state !== 'running') throw new StrataError('STRATA_ERR_STATE', `Redis dispatcher cannot run a job in state ${this.#state}`, { state: this.#state });
    const key = jobKey(job);
    const recorded = this.#recorded.get(key);
    if (recorded !== undefined) {
      this.#recorded.delete(key);
      this.#counted.add(key);
      this.#replayed++;
      return Promise.resolve(recorded);
    }
    return new Promise((resolve, reject) => {
      this.#waiting.set(key, { job, version: model.version, resolve, reject });
      this.#needs.set(model.version, (this.#needs.get(model.version) ?? 0) + 1);
      const early = this.#early.get(key);
      if (early !== undefined) {
        this.#early.delete(key);
        this.#deliver(key, early);
        return;
      }
      this.#submit(job, key, model).catch((err: unknown) => this.#fail(key, err));
    });
  }

  async #submit(job: ClientJob, key: string, model: { version: number; weights: Float32Array }): Promise<void> {
    await this.#publish(model);
    this.#firstSubmit ??= performance.now();
    const data: RedisJobData = { runId: this.#runId, key, job: encodeJob(job) };
    // The job id makes BullMQ add it once: a resumed simulation host adding a job its first life added finds the same job.
    await this.#queue!.add('client', data, {
      jobId: `${this.#runId}-${key}`, attempts: 1, priority: priorityOf(job), removeOnComplete: { age: 3600, count: 100_000 }, removeOnFail: { age: 3600, count: 100_000 },
    });
    this.#jobsStarted++;
    // Done before this life of the host listened (a resumed run): its result is already there.
    const ready = await this.#redis!.getBuffer(this.#keys.result(key));
    if (ready !== null) this.#deliver(key, ready);
  }

  #publish(model: { version: number; weights: Float32Array }): Promise<void> {
    let p = this.#published.get(model.version);
    if (p === undefined) {
      const w = model.weights;
      this.#modelPublishes++;
      p = this.#redis!.set(this.#keys.model(model.version), Buffer.from(w.buffer, w.byteOffset, w.byteLength), 'EX', KEY_TTL_SECONDS).then(() => undefined);
      this.#published.set(model.version, p);
    }
    return p;
  }

  /** Pops the keys of finished jobs and delivers their results. */
  async #collect(): Promise<void> {
    while (this.#state === 'running') {
      let popped: [string, string] | null;
      try {
        popped = await this.#blocking!.blpop(this.#keys.done, 1);
      } catch (err) {
        if (this.#state !== 'running') return;
        this.#log.warn({ err: (err as Error).message }, 'reading results from Redis failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (popped === null) continue;
      const key = popped[1];
      try {
        const data = await this.#redis!.getBuffer(this.#keys.result(key));
        if (data !== null) this.#deliver(key, data);
      } catch (err) {
        if (this.#state === 'running') this.#fail(key, err);
      }
    }
  }

  #deliver(key: string, data: Buffer): void {
    const w = this.#waiting.get(key);
    if (w === undefined) {
      if (this.#counted.has(key) || this.#recorded.has(key)) {
        // Counted already (a job that ran twice), or recorded in the checkpoint before a restart.
        this.#duplicates++;
        this.#redis?.del(this.#keys.result(key)).catch(() => undefined);
      } else {
        // Queued by this run's first life and not asked for yet in this one: kept until the replay gets there.
        this.#early.set(key, data);
      }
      return;
    }
    const { envelope, frame } = decodeResult(data);
    if (!envelope.ok) {
      this.#fail(key, new StrataError('STRATA_ERR_CLIENT_FAILED', `client ${w.job.clientId} failed on worker host ${envelope.host.name}: ${envelope.message}`, {
        clientId: w.job.clientId, host: envelope.host.name,
      }));
      return;
    }
    const result: ClientResult = { ...envelope.result, frame };
    // Committed before the engine sees it; the Redis copy goes after.
    this.#checkpoint?.record({ jobId: w.job.jobId, jobKey: key, roundId: w.job.assignment.roundId, clientId: w.job.clientId, header: JSON.stringify(envelope.result), frame });
    this.#done(key, w);
    this.#counted.add(key);
    this.#note(envelope.host, w.job, result);
    this.#redis?.del(this.#keys.result(key)).catch(() => undefined);
    w.resolve(result);
  }

  #fail(key: string, err: unknown): void {
    const w = this.#waiting.get(key);
    if (w === undefined) return;
    this.#done(key, w);
    w.reject(err instanceof Error ? err : new Error(String(err)));
  }

  #done(key: string, w: Waiting): void {
    this.#waiting.delete(key);
    this.#lastResultAt = performance.now();
    this.#lastResult = performance.now();
    const left = (this.#needs.get(w.version) ?? 1) - 1;
    if (left > 0) {
      this.#needs.set(w.version, left);
      return;
    }
    this.#needs.delete(w.version);
    // No job waits for this version, and newer ones exist: its copy in Redis can go.
    const newest = Math.max(...this.#published.keys());
    if (w.version < newest) {
      this.#published.delete(w.version);
      this.#redis?.del(this.#keys.model(w.version)).catch(() => undefined);
    }
  }

  #note(h: HostFacts, job: ClientJob, r: ClientResult): void {
    let acc = this.#hosts.get(h.name);
    if (acc === undefined) {
      acc = { facts: h, jobs: 0, clients: new Set(), reruns: 0, cpu: 0, wall: 0, budgetSeconds: 0 };
      this.#hosts.set(h.name, acc);
    }
    acc.jobs++;
    acc.clients.add(job.clientId);
    acc.cpu += r.cpuSeconds;
    acc.wall += r.wallSeconds;
    acc.budgetSeconds += h.load * r.wallSeconds;
    if (h.stalled > 0) {
      acc.reruns++;
      this.#reruns++;
    }
    const start = (h.startedAtMs - this.#epoch0) / 1000;
    this.#spans.push({ host: h.name, start, end: start + r.wallSeconds, load: h.load });
  }

  stats(): RedisDispatchStats {
    const span = this.#firstSubmit !== null && this.#lastResult !== null ? Math.max(1e-3, (this.#lastResult - this.#firstSubmit) / 1000) : 0;
    const hosts = [...this.#hosts.entries()].map(([host, a]): HostStats => ({
      host, cores: a.facts.cores, jobs: a.jobs, clients: a.clients.size, reruns: a.reruns, cpuSeconds: a.cpu, wallSeconds: a.wall,
      measuredShare: a.wall > 0 ? a.cpu / a.wall : null, utilisation: span > 0 ? a.budgetSeconds / (a.facts.cores * span) : 0,
    }));
    const cores = hosts.reduce((s, h) => s + h.cores, 0);
    const budgetSeconds = [...this.#hosts.values()].reduce((s, a) => s + a.budgetSeconds, 0);
    return {
      redis: redactRedisUrl(this.#url), queue: this.#queueName, runId: this.#runId, workers: hosts.length, hosts,
      jobsStarted: this.#jobsStarted, replayed: this.#replayed, reruns: this.#reruns, duplicates: this.#duplicates, modelPublishes: this.#modelPublishes,
      meanUtilisation: span > 0 && cores > 0 ? budgetSeconds / (cores * span) : 0,
      timeline: timelineOf(this.#spans, hosts.map((h) => h.host)),
    };
  }

  /** Stops collecting; jobs of this run still queued are removed and its keys deleted (unless `keep`: a run that may resume). */
  async stop(options: { keep?: boolean } = {}): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'stopped';
    clearInterval(this.#watchdog);
    const stopped = new StrataError('STRATA_ERR_STATE', 'Redis dispatcher stopped', { state: 'stopped' });
    const left = [...this.#waiting.keys()];
    for (const w of this.#waiting.values()) w.reject(stopped);
    this.#waiting.clear();
    this.#blocking?.disconnect();
    await this.#pump?.catch(() => undefined);
    if (wasRunning && options.keep !== true) {
      for (const key of left) await this.#queue?.remove(`${this.#runId}-${key}`).catch(() => 0);
      const models = [...this.#published.keys()].map((v) => this.#keys.model(v));
      await this.#redis?.del(this.#keys.spec, this.#keys.done, ...models).catch(() => undefined);
    }
    await this.#queue?.close().catch(() => undefined);
    await this.#redis?.quit().catch(() => undefined);
  }
}

/**
 * BullMQ priority (1 is first): the longest estimated job first, as the local
 * scheduler places them (its estimate's form: work / budget), so a round's
 * long clients start early and its end is not one long client alone.
 */
function priorityOf(job: ClientJob): number {
  const estimate = job.work / Math.max(job.budget, 0.01);
  return Math.min(2_000_000, Math.max(1, Math.round(1e7 / (1 + estimate))));
}

/** Budget in use on each host over time, from the jobs' start and end (seconds since the run started). */
function timelineOf(spans: readonly { host: string; start: number; end: number; load: number }[], hosts: readonly string[]): UtilisationPoint[] {
  const events = spans.flatMap((s) => [{ t: s.start, host: hosts.indexOf(s.host), d: s.load }, { t: s.end, host: hosts.indexOf(s.host), d: -s.load }]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  const load = hosts.map(() => 0);
  const points: UtilisationPoint[] = [];
  for (const e of events) {
    load[e.host] = Math.max(0, load[e.host]! + e.d);
    points.push({ t: Math.round(e.t * 1000) / 1000, load: load.map((x) => Math.round(x * 1000) / 1000) });
  }
  if (points.length <= 400) return points;
  const step = Math.ceil(points.length / 400);
  return points.filter((_, i) => i % step === 0 || i === points.length - 1);
}
