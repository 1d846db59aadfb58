import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import { initBackend, type BackendInfo } from '../ml/backend.js';
import type { ThreadsRequest } from '../ml/threads.js';
import { splitClassIncremental } from '../ml/datasets/class-incremental.js';
import type { Dataset } from '../ml/datasets/dataset.js';
import type { Partition } from '../ml/datasets/partition.js';
import { buildModel, isModelKind, parseModelSpec, type ModelFactory } from '../ml/models.js';
import type { ArrivingSample } from '../storage-tier/arrival-log.js';
import { SampleStore } from '../storage-tier/sample-store.js';
import { layoutOf } from '../ml/weights.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { computeLayoutHash, type DeviceReport, type RoundAssignmentMessage, type UpdateAckMessage } from '../protocol/index.js';
import type { PrivacyFloor } from '../privacy/privacy-floor.js';
import { AgentConnection, type TrainOutcome } from './agent-connection.js';
import type { MemoryHierarchyStats, StorageBudget } from './carm/memory-hierarchy.js';
import type { SwapMode } from './carm/swap-manager.js';
import type { SwapPolicyName } from './carm/swap-policy.js';
import { BUILTIN_CL_METHODS, checkClMethods, type ClMethodFactory } from './cl-methods/index.js';
import type { ClPlugin } from './cl-plugin.js';
import { DeviceRuntime } from './device-runtime.js';
import { DeviceStream, type SampleStream, type StreamSchedule } from './device-stream.js';
import { LiveStream } from './live-stream.js';
import { localShard, wholeShard, type LocalShard, type ShardSpec } from './local-shard.js';
import type { MiroOptions } from './miro/miro-options.js';
import { logEvent } from '../common/log-events.js';

/** Options of a device agent; defaults in `compileDeviceAgentOptions`. */
export interface DeviceAgentOptions {
  url: string;
  agentId: string;
  token: string;
  profile: DeviceProfile;
  /**
   * The device's data. Its train split (or `shard` of it) is the device's
   * stream, unless `live`: then the device learns from samples fed to it
   * (`ingest()`, `strata agent --inbox`), shaped like this data set's.
   */
  data: Dataset;
  /** Its samples arrive class-incrementally: `tasks` tasks of classes, each over `roundsPerTask` rounds. Default false. */
  classIncremental?: boolean;
  /** Fed live (`ingest()`) instead of from `data`'s train split. Default false. */
  live?: boolean;
  /**
   * The device's own model: a factory, or a spec (`mlp`, `cnn`, or a path
   * to the tfjs Layers model.json the coordinator runs), checked at start.
   * Default: the model the coordinator's training config names (a file
   * path there must exist on this device too). Either way its layout must
   * be the coordinator's (checked each round: STRATA_ERR_LAYOUT_MISMATCH).
   */
  model?: string | ModelFactory;
  /** The CL methods the device can run; the coordinator's training config names one. Default: the built-ins. */
  methods?: readonly ClMethodFactory[];
  /** Your own plugins of the CL loop. */
  plugins?: readonly ClPlugin[];
  /** This device's shard; default: the whole training split is the device's data. */
  shard?: ShardSpec;
  /** How shards are dealt (the same on every device, and in `strata simulate`). Default label skew 0.8. */
  partition?: Partition;
  /** The device's SQLite sample store (the memory hierarchy's storage tier). Its state sits beside it. */
  db: string;
  /** New samples the device learns from per round; 'whole': all of its data every round. Default 512. */
  samplesPerRound?: number | 'whole';
  /** `classIncremental`: tasks in the split, and rounds each task's samples take to arrive. Defaults 5 and 2. */
  tasks?: number;
  roundsPerTask?: number;
  /** Episodic-memory slots in RAM. Default 500. */
  memory?: number;
  /** Default `all`. */
  storage?: StorageBudget;
  /** Default `async` (`off` with storage `none`). */
  swap?: SwapMode;
  /** Default 0.5. */
  swapRatio?: number;
  /** Default `random`. */
  policy?: SwapPolicyName;
  /** `miro`: Miro profiles at each task boundary of the device's stream. Default off. */
  profiler?: 'off' | 'miro';
  miro?: MiroOptions;
  /** tfjs backend request. Default auto. */
  backend?: string;
  /** Training threads: 'auto' (the cores this process may use, less what the machine is busy with) or N. Default STRATA_THREADS, else auto. */
  threads?: ThreadsRequest;
  /** Seeds the shard deal and class order (the same on every device) and local sampling. Default 1. */
  seed?: number;
  /** Reconnect backoff cap. Default 30 s. */
  reconnectMaxMs?: number;
  ca?: string | Buffer;
  /** The least privacy this device takes part under (secure aggregation, a DP floor; local DP it applies itself). Default none. */
  privacyFloor?: PrivacyFloor;
  /** Offer secure aggregation. Default true. */
  secureAggregation?: boolean;
  logger: Logger;
}

type OptionalKeys = 'shard' | 'ca' | 'backend' | 'miro' | 'threads' | 'model' | 'plugins' | 'privacyFloor';
type Compiled = Readonly<Required<Omit<DeviceAgentOptions, OptionalKeys>> & Pick<DeviceAgentOptions, OptionalKeys>>;

export function compileDeviceAgentOptions(o: DeviceAgentOptions): Compiled {
  const positive = (name: string, v: number): number => {
    if (!Number.isSafeInteger(v) || v < 1) throw new StrataError('STRATA_ERR_BAD_OPTION', `agent: ${name} must be a positive integer (got ${v})`, { option: name });
    return v;
  };
  if (typeof o.data !== 'object' || o.data === null || o.data.train === undefined) throw new StrataError('STRATA_ERR_BAD_OPTION', 'agent: data must be a Dataset', { option: 'data' });
  if (o.methods !== undefined) checkClMethods(o.methods);
  if (typeof o.model === 'string') parseModelSpec(o.model, { option: 'model' });
  if (o.live === true && o.classIncremental === true) throw new StrataError('STRATA_ERR_BAD_OPTION', 'agent: a live device finds its task boundaries in what arrives (not both live and classIncremental)', { option: 'classIncremental' });
  const storage = o.storage ?? 'all';
  const samplesPerRound = o.samplesPerRound ?? 512;
  return Object.freeze({
    ...o,
    classIncremental: o.classIncremental ?? false,
    live: o.live ?? false,
    methods: o.methods ?? BUILTIN_CL_METHODS,
    partition: o.partition ?? ({ kind: 'skew', dominance: 0.8 } as Partition),
    samplesPerRound: samplesPerRound === 'whole' ? 'whole' : positive('samplesPerRound', samplesPerRound),
    tasks: positive('tasks', o.tasks ?? 5),
    roundsPerTask: positive('roundsPerTask', o.roundsPerTask ?? 2),
    memory: positive('memory', o.memory ?? 500),
    storage,
    swap: storage === 'none' ? 'off' : o.swap ?? 'async',
    swapRatio: o.swapRatio ?? 0.5,
    policy: o.policy ?? 'random',
    profiler: o.profiler ?? 'off',
    seed: o.seed ?? 1,
    reconnectMaxMs: o.reconnectMaxMs ?? 30_000,
    secureAggregation: o.secureAggregation ?? true,
  });
}

/** One trained round, as the agent's report lists it. */
export interface AgentRoundRecord {
  roundId: number;
  modelVersion: number;
  streamSamples: number;
  replaySamples: number;
  loss: number;
  accuracy: number;
  hostSeconds: number;
  deviceSeconds: number;
  joules: number;
  fedproxMu: number | null;
  /** The device's task, memory configuration, and Miro's boundary when it profiled. */
  device: DeviceReport;
}

export interface AgentReport {
  agentId: string;
  profile: string;
  dataset: string;
  /** Whether it was fed live, and the samples it took in. */
  live: boolean;
  ingested: number;
  shard: ShardSpec | null;
  shardSamples: number;
  classCounts: number[];
  dominantClasses: number[];
  backend: string;
  /** Training threads the backend runs. */
  threads: number;
  rounds: AgentRoundRecord[];
  acks: { accepted: number; rejected: number };
  memory: MemoryHierarchyStats | null;
  totals: { hostSeconds: number; deviceSeconds: number; joules: number; profilingJoules: number };
}

export type DeviceAgentState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * The edge device agent: the device runtime (its own data as a stream, the
 * CL method the coordinator asks for over the CarM memory hierarchy, Miro
 * when asked, device accounting) plus its connection to the coordinator. It
 * sends back only the update and metrics: raw samples never leave it. It is
 * exactly what `strata simulate` runs for each virtual client.
 */
export class DeviceAgent {
  readonly options: Compiled;
  readonly #log: Logger;
  #state: DeviceAgentState = 'created';
  #connection: AgentConnection | undefined;
  #shard: LocalShard | undefined;
  #stream: SampleStream | undefined;
  #ingested = 0;
  #backend: BackendInfo | undefined;
  #runtime: { kind: string; layoutHash: string; numParams: number; runtime: DeviceRuntime } | undefined;
  readonly #rounds: AgentRoundRecord[] = [];
  readonly #acks = { accepted: 0, rejected: 0 };
  #finalMemory: MemoryHierarchyStats | null = null;

  constructor(options: DeviceAgentOptions) {
    this.options = compileDeviceAgentOptions(options);
    this.#log = options.logger.child({ component: 'agent', agentId: options.agentId });
  }

  get state(): DeviceAgentState { return this.#state; }
  get connection(): AgentConnection | undefined { return this.#connection; }

  /** Checks its store, loads the backend and the local data, then connects. Connection failures are retried, not thrown. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new StrataError('STRATA_ERR_STATE', `agent cannot start in state ${this.#state}`);
    this.#state = 'starting';
    const o = this.options;
    // Fail fast: a store that is not one, is corrupt or is newer is refused now, before the backend loads and before connecting.
    SampleStore.open(path.resolve(o.db)).close();
    // CarM's async swap worker decodes samples beside the training loop: with threads auto it keeps a core.
    this.#backend = await initBackend({
      backend: o.backend, busyThreads: o.swap === 'async' ? 1 : 0, ...(o.threads !== undefined ? { threads: o.threads } : {}),
    });
    const ds = o.data;
    // The device's own model is checked now (shape, counted work, trainable here), not at its first round.
    if (o.model !== undefined) (await buildModel(o.model, ds, o.seed, { origin: { option: 'model' } })).dispose();
    if (o.live) {
      // Opened (and checked) now: samples may arrive before the first round.
      this.#stream = new LiveStream(path.resolve(o.db), { featureSize: ds.featureSize, featureType: ds.train.features instanceof Uint8Array ? 'uint8' : 'float32' });
      this.#log.info({ backend: this.#backend.name, threads: this.#backend.threads, like: ds.name, waiting: (this.#stream as LiveStream).log.count() }, 'fed live: samples arrive through ingest');
    } else {
      this.#shard = o.shard ? localShard(ds, o.shard, o.partition, o.seed) : wholeShard(ds, o.seed);
      if (this.#shard.train.count === 0) throw new StrataError('STRATA_ERR_DATASET_EMPTY', `${ds.name}: shard ${o.shard?.index}/${o.shard?.count} holds no samples`);
      this.#stream = new DeviceStream(this.#shard.train, Int32Array.from({ length: this.#shard.train.count }, (_, i) => i), this.#schedule());
      this.#log.info({
        ...logEvent('agent.data-ready'), backend: this.#backend.name, threads: this.#backend.threads, dataset: ds.name, shard: o.shard ?? null, samples: this.#shard.train.count,
        dominantClasses: this.#shard.dominantClasses, classCounts: this.#shard.classCounts,
      }, 'local data ready');
    }
    const connection = new AgentConnection({
      url: o.url, agentId: o.agentId, token: o.token, profile: o.profile.name, logger: this.#log,
      train: (a, global, signal) => this.#train(a, global, signal),
      capabilities: { models: o.model === undefined ? ['mlp', 'cnn'] : [typeof o.model === 'string' ? o.model : 'custom'], datasets: [ds.name], clMethods: o.methods.map((m) => m.name) },
      backoff: { maxMs: o.reconnectMaxMs },
      ...(o.ca ? { ca: o.ca } : {}),
      secureAggregation: o.secureAggregation,
      ...(o.privacyFloor !== undefined ? { privacyFloor: o.privacyFloor } : {}),
    });
    connection.on('assignment', (a: RoundAssignmentMessage) => this.#log.info({ ...logEvent('agent.assignment-received'), roundId: a.roundId, modelVersion: a.modelVersion }, 'assignment received'));
    connection.on('ack', (m: UpdateAckMessage) => {
      if (m.accepted) this.#acks.accepted++;
      else this.#acks.rejected++;
      this.#log.info({ ...logEvent('agent.update-acknowledged'), roundId: m.roundId, accepted: m.accepted, code: m.code }, 'update acknowledged');
    });
    this.#connection = connection;
    connection.start();
    this.#state = 'running';
  }

  /**
   * Takes in samples arriving at a live device (`live: true`): committed to
   * its store before this returns; its next round learns from them.
   * Returns the newest arrival id. With `options.key` the batch is taken in
   * at most once (the key is committed with it; a batch offered again under
   * the same key adds nothing): for a source that may offer a batch again
   * after a crash, as the inbox does a file it had not yet removed.
   */
  ingest(samples: readonly ArrivingSample[], options: { key?: string } = {}): number {
    const stream = this.#stream;
    if (!(stream instanceof LiveStream)) throw new StrataError('STRATA_ERR_STATE', `ingest() needs a started agent with live: true (state ${this.#state})`, { state: this.#state });
    const { lastId, added } = stream.ingest(samples, options.key);
    this.#ingested += added;
    return lastId;
  }

  /** Stops the connection (awaiting any training), saves and closes the device runtime, returns the report. */
  async stop(): Promise<AgentReport> {
    if (this.#state === 'running' || this.#state === 'starting') {
      this.#state = 'stopping';
      await this.#connection?.stop();
      this.#finalMemory = (await this.#runtime?.runtime.close()) ?? null;
      this.#runtime?.runtime.options.model.dispose();
      this.#runtime = undefined;
      if (this.#stream instanceof LiveStream) this.#stream.close();
      this.#state = 'stopped';
    }
    return this.report();
  }

  report(): AgentReport {
    const sum = (f: (r: AgentRoundRecord) => number): number => this.#rounds.reduce((s, r) => s + f(r), 0);
    return {
      agentId: this.options.agentId, profile: this.options.profile.name, dataset: this.options.data.name, live: this.options.live, ingested: this.#ingested,
      shard: this.options.shard ?? null,
      shardSamples: this.#shard?.train.count ?? 0, classCounts: this.#shard?.classCounts ?? [], dominantClasses: this.#shard?.dominantClasses ?? [],
      backend: this.#backend?.name ?? 'none', threads: this.#backend?.threads ?? 0, rounds: [...this.#rounds], acks: { ...this.#acks },
      memory: this.#runtime?.runtime.memoryStats() ?? this.#finalMemory,
      totals: {
        hostSeconds: sum((r) => r.hostSeconds), deviceSeconds: sum((r) => r.deviceSeconds), joules: sum((r) => r.joules),
        profilingJoules: sum((r) => r.device.profilingJoules ?? 0),
      },
    };
  }

  async #train(a: RoundAssignmentMessage, global: Float32Array, signal: AbortSignal): Promise<TrainOutcome> {
    const runtime = await this.#runtimeFor(a);
    const stream = this.#stream;
    if (stream instanceof LiveStream && stream.pending(runtime.state.position) === 0) {
      // A live device learns from what arrived since its last round: it waits for something to arrive.
      this.#log.info({ roundId: a.roundId }, 'waiting for samples to arrive');
      while (stream.pending(runtime.state.position) === 0) {
        if (signal.aborted) throw new StrataError('STRATA_ERR_ABORTED', 'stopped while waiting for samples');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const outcome = await runtime.trainRound(a, global, signal);
    const m = outcome.metrics;
    this.#rounds.push({
      roundId: a.roundId, modelVersion: a.modelVersion, streamSamples: m.numSamples, replaySamples: outcome.replaySamples, loss: m.loss,
      accuracy: m.accuracy, hostSeconds: m.hostSeconds, deviceSeconds: m.deviceSeconds, joules: outcome.joules.total,
      fedproxMu: a.config.fedproxMu ?? null, device: outcome.device,
    });
    const stats = outcome.memory;
    this.#log.info({
      ...logEvent('agent.round-trained'), roundId: a.roundId, modelVersion: a.modelVersion, method: a.config.method, fedproxMu: a.config.fedproxMu ?? null, ...m,
      replaySamples: outcome.replaySamples, joules: outcome.joules.total, emSize: stats?.emSize ?? 0, storedSamples: stats?.storedSamples ?? 0,
      swapsApplied: stats?.swap?.applied ?? 0, task: outcome.device.task, config: outcome.device.config ?? null,
      profilingJoules: outcome.device.profilingJoules ?? 0, ...(outcome.device.boundary ? { chosen: outcome.device.boundary.chosen } : {}),
    }, 'round trained');
    return { delta: outcome.delta, metrics: m, energySource: outcome.energySource, joules: outcome.joules, device: outcome.device };
  }

  /** The device runtime for an assignment's model; its layout must be the coordinator's. */
  async #runtimeFor(a: RoundAssignmentMessage): Promise<DeviceRuntime> {
    const o = this.options;
    // The device's own model for its whole life; else the one the coordinator names.
    const source = o.model ?? a.config.model;
    const kind = typeof source === 'string' ? source : 'custom';
    if (this.#runtime?.kind !== kind) {
      if (this.#runtime !== undefined) {
        // Keeps the live stream open (the next runtime trains from it): only the model goes.
        this.#runtime.runtime.options.model.dispose();
      }
      const ds = o.data;
      const shape = { inputShape: ds.inputShape, numClasses: ds.numClasses };
      if (o.model === undefined && !isModelKind(a.config.model) && !existsSync(a.config.model)) {
        throw new StrataError('STRATA_ERR_BAD_OPTION', `round ${a.roundId}: the coordinator's model is the file ${a.config.model}, which this device does not have; give the agent its own copy (--model PATH)`, { option: 'model' });
      }
      const model = await buildModel(typeof source === 'string' ? parseModelSpec(source, { option: o.model !== undefined ? 'model' : 'config.model' }) : source, shape, o.seed);
      const layout = layoutOf(model);
      const db = path.resolve(o.db);
      const runtime = new DeviceRuntime({
        clientId: o.agentId, profile: o.profile, model, stream: this.#stream!,
        featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale, storeFile: db,
        memory: { slots: o.memory, storage: o.storage, swap: o.swap, swapRatio: o.swapRatio, policy: o.policy },
        profiler: o.profiler, ...(o.miro !== undefined ? { miro: o.miro } : {}), seed: o.seed, logger: this.#log,
        methods: o.methods, ...(o.plugins !== undefined ? { plugins: o.plugins } : {}),
      });
      this.#runtime = {
        kind, runtime, numParams: layout.totalSize,
        layoutHash: computeLayoutHash(layout.entries.map((e) => ({ name: e.name, shape: e.shape }))),
      };
    }
    const r = this.#runtime;
    if (r.layoutHash !== a.layoutHash || r.numParams !== a.numParams) {
      throw new StrataError('STRATA_ERR_LAYOUT_MISMATCH', `round ${a.roundId}: the coordinator's model (${a.layoutHash}, ${a.numParams} params) is not this device's ${r.kind} on ${this.options.data.name} (${r.layoutHash}, ${r.numParams})`, {
        expected: a.layoutHash, actual: r.layoutHash,
      });
    }
    return r.runtime;
  }

  /** When the device's samples arrive: class-incrementally, else in chunks (or all each round). */
  #schedule(): StreamSchedule {
    const o = this.options;
    if (o.classIncremental) {
      const scenario = splitClassIncremental(o.data, { tasks: o.tasks, seed: o.seed });
      return { kind: 'tasks', tasks: scenario.tasks.map((t) => t.classes), roundsPerTask: o.roundsPerTask };
    }
    return o.samplesPerRound === 'whole' ? { kind: 'whole' } : { kind: 'chunks', samplesPerRound: o.samplesPerRound };
  }
}
