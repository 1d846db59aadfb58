import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import { initBackend, type BackendInfo } from '../ml/backend.js';
import type { Dataset } from '../ml/datasets/dataset.js';
import { loadDataset, parseDatasetSpec } from '../ml/datasets/load-dataset.js';
import { createModel, parseModelKind } from '../ml/models.js';
import { Trainer } from '../ml/trainer.js';
import { getFlatWeights, layoutOf, setFlatWeights } from '../ml/weights.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { EnergyMeter } from '../profiles/energy-meter.js';
import { WEIGHT_FRAME_HEADER_BYTES, computeLayoutHash, type RoundAssignmentMessage, type UpdateAckMessage } from '../protocol/index.js';
import { AgentConnection, type TrainOutcome } from './agent-connection.js';
import { createClStrategy } from './cl-strategies/index.js';
import type { ClTaskRows } from './cl-plugin.js';
import { ContinualLearner } from './continual-learner.js';
import { localShard, wholeShard, type LocalShard, type ShardSpec } from './local-shard.js';
import { MemoryHierarchy, type MemoryHierarchyStats, type StorageBudget } from './carm/memory-hierarchy.js';
import { proximalTerm, withExtraLoss } from './proximal-term.js';
import type { SwapMode } from './carm/swap-manager.js';
import type { SwapPolicyName } from './carm/swap-policy.js';

/** Options of a device agent; defaults in `compileDeviceAgentOptions`. */
export interface DeviceAgentOptions {
  url: string;
  agentId: string;
  token: string;
  profile: DeviceProfile;
  /** `mnist`, `synthetic` or `idx:DIR` (the device's own data). */
  dataset: string;
  /** This device's non-IID shard; default: the whole training split is the device's data. */
  shard?: ShardSpec;
  /** Label skew of the shard (fraction of its classes' samples a shard owner gets). Default 0.8. */
  shardDominance?: number;
  /** The device's SQLite sample store (the memory hierarchy's storage tier). Its agent state sits beside it. */
  db: string;
  /** Fresh stream samples the device learns from per round. Default 512. */
  samplesPerRound?: number;
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
  /** tfjs backend request. Default auto. */
  backend?: string;
  /** Seeds the shard deal (same on every device) and local sampling. Default 1. */
  seed?: number;
  /** Reconnect backoff cap. Default 30 s. */
  reconnectMaxMs?: number;
  ca?: string | Buffer;
  logger: Logger;
}

type Compiled = Readonly<Required<Omit<DeviceAgentOptions, 'shard' | 'ca' | 'backend'>> & Pick<DeviceAgentOptions, 'shard' | 'ca' | 'backend'>>;

export function compileDeviceAgentOptions(o: DeviceAgentOptions): Compiled {
  const positive = (name: string, v: number): number => {
    if (!Number.isSafeInteger(v) || v < 1) throw new StrataError('STRATA_ERR_BAD_OPTION', `agent: ${name} must be a positive integer (got ${v})`, { option: name });
    return v;
  };
  const spec = parseDatasetSpec(o.dataset);
  if (spec.split) throw new StrataError('STRATA_ERR_BAD_FLAG', `--dataset: an agent learns from a data set, not a split scenario ('${o.dataset}')`, { flag: '--dataset' });
  const storage = o.storage ?? 'all';
  return Object.freeze({
    ...o,
    shardDominance: o.shardDominance ?? 0.8,
    samplesPerRound: positive('samplesPerRound', o.samplesPerRound ?? 512),
    memory: positive('memory', o.memory ?? 500),
    storage,
    swap: storage === 'none' ? 'off' : o.swap ?? 'async',
    swapRatio: o.swapRatio ?? 0.5,
    policy: o.policy ?? 'random',
    seed: o.seed ?? 1,
    reconnectMaxMs: o.reconnectMaxMs ?? 30_000,
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
}

export interface AgentReport {
  agentId: string;
  profile: string;
  dataset: string;
  shard: ShardSpec | null;
  shardSamples: number;
  classCounts: number[];
  dominantClasses: number[];
  backend: string;
  rounds: AgentRoundRecord[];
  acks: { accepted: number; rejected: number };
  memory: MemoryHierarchyStats | null;
  totals: { hostSeconds: number; deviceSeconds: number; joules: number };
}

interface LocalModel { kind: string; model: tf.LayersModel; layoutHash: string; numParams: number }

export type DeviceAgentState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/** What survives an agent restart: where its stream is, and how many rounds it learned (beside the sample store). */
interface PersistedState { cursor: number; roundsTrained: number }

/**
 * The edge device agent: holds its own data (a non-IID shard, or its IDX
 * files), learns each round's assignment with the continual-learning runtime
 * (the next chunk of its stream, replaying its episodic memory, which the
 * SQLite store behind it keeps refreshing by swaps), and sends back only the
 * new weights and metrics: raw samples never leave the device. Device time
 * and joules come from its profile (DeviceClock / EnergyMeter).
 */
export class DeviceAgent {
  readonly options: Compiled;
  readonly #log: Logger;
  #state: DeviceAgentState = 'created';
  #connection: AgentConnection | undefined;
  #dataset: Dataset | undefined;
  #shard: LocalShard | undefined;
  #backend: BackendInfo | undefined;
  #model: LocalModel | undefined;
  #hierarchy: MemoryHierarchy | undefined;
  #meter: EnergyMeter;
  #persisted: PersistedState = { cursor: 0, roundsTrained: 0 };
  readonly #rounds: AgentRoundRecord[] = [];
  readonly #acks = { accepted: 0, rejected: 0 };
  #finalMemory: MemoryHierarchyStats | null = null;

  constructor(options: DeviceAgentOptions) {
    this.options = compileDeviceAgentOptions(options);
    this.#log = options.logger.child({ component: 'agent', agentId: options.agentId });
    this.#meter = new EnergyMeter(this.options.profile, { sampleIntervalMs: 0 });
  }

  get state(): DeviceAgentState { return this.#state; }
  get connection(): AgentConnection | undefined { return this.#connection; }
  get #stateFile(): string { return `${this.options.db}.agent.json`; }

  /** Loads the backend and the local data, then connects. Connection failures are retried, not thrown. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new StrataError('STRATA_ERR_STATE', `agent cannot start in state ${this.#state}`);
    this.#state = 'starting';
    const o = this.options;
    this.#backend = await initBackend({ backend: o.backend });
    const ds = loadDataset(o.dataset);
    this.#dataset = ds;
    this.#shard = o.shard ? localShard(ds, o.shard, { kind: 'skew', dominance: o.shardDominance }, o.seed) : wholeShard(ds, o.seed);
    if (this.#shard.train.count === 0) throw new StrataError('STRATA_ERR_DATASET_EMPTY', `${o.dataset}: shard ${o.shard?.index}/${o.shard?.count} holds no samples`);
    this.#persisted = this.#loadState();
    this.#log.info({
      backend: this.#backend.name, dataset: ds.name, shard: o.shard ?? null, samples: this.#shard.train.count,
      dominantClasses: this.#shard.dominantClasses, classCounts: this.#shard.classCounts, resumedAt: this.#persisted,
    }, 'local data ready');
    const connection = new AgentConnection({
      url: o.url, agentId: o.agentId, token: o.token, profile: o.profile.name, logger: this.#log,
      train: (a, global, signal) => this.#train(a, global, signal),
      capabilities: { models: ['mlp', 'cnn'], datasets: [ds.name], clMethods: ['finetune', 'er', 'derpp'] },
      backoff: { maxMs: o.reconnectMaxMs },
      ...(o.ca ? { ca: o.ca } : {}),
    });
    connection.on('assignment', (a: RoundAssignmentMessage) => this.#log.info({ roundId: a.roundId, modelVersion: a.modelVersion }, 'assignment received'));
    connection.on('ack', (m: UpdateAckMessage) => {
      if (m.accepted) this.#acks.accepted++;
      else this.#acks.rejected++;
      this.#log.info({ roundId: m.roundId, accepted: m.accepted, code: m.code }, 'update acknowledged');
    });
    this.#connection = connection;
    connection.start();
    this.#state = 'running';
  }

  /** Stops the connection (awaiting any training), closes the memory hierarchy, returns the report. */
  async stop(): Promise<AgentReport> {
    if (this.#state === 'running' || this.#state === 'starting') {
      this.#state = 'stopping';
      await this.#connection?.stop();
      this.#finalMemory = this.#hierarchy?.stats() ?? null;
      await this.#hierarchy?.close();
      this.#hierarchy = undefined;
      this.#model?.model.dispose();
      this.#state = 'stopped';
    }
    return this.report();
  }

  report(): AgentReport {
    const sum = (f: (r: AgentRoundRecord) => number): number => this.#rounds.reduce((s, r) => s + f(r), 0);
    return {
      agentId: this.options.agentId, profile: this.options.profile.name, dataset: this.options.dataset, shard: this.options.shard ?? null,
      shardSamples: this.#shard?.train.count ?? 0, classCounts: this.#shard?.classCounts ?? [], dominantClasses: this.#shard?.dominantClasses ?? [],
      backend: this.#backend?.name ?? 'none', rounds: [...this.#rounds], acks: { ...this.#acks }, memory: this.#hierarchy?.stats() ?? this.#finalMemory,
      totals: { hostSeconds: sum((r) => r.hostSeconds), deviceSeconds: sum((r) => r.deviceSeconds), joules: sum((r) => r.joules) },
    };
  }

  async #train(a: RoundAssignmentMessage, global: Float32Array, signal: AbortSignal): Promise<TrainOutcome> {
    const started = performance.now();
    const ds = this.#dataset!;
    const shard = this.#shard!;
    const cfg = a.config;
    const m = this.#modelFor(a);
    setFlatWeights(m.model, global);
    // The protocol's replay is a ratio (replayed per stream sample); the CL methods count per step.
    const replayPerStep = Math.round(cfg.replay * cfg.batchSize);
    const method = createClStrategy(cfg.method, { replay: replayPerStep });
    const hierarchy = method.usesMemory ? await this.#hierarchyFor(method.storesLogits) : undefined;
    const prox = cfg.fedproxMu !== undefined && cfg.fedproxMu > 0 ? proximalTerm(m.model, global, cfg.fedproxMu) : undefined;
    const strategy = prox ? withExtraLoss(method, prox.term) : method;
    const trainer = new Trainer(m.model, { optimizer: 'sgd', learningRate: cfg.learningRate, featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale });
    const task = this.#nextTask();
    let lossSum = 0;
    let steps = 0;
    const fetchedBefore = this.#hierarchy?.stats().swap?.fetched ?? 0;
    try {
      const learner = new ContinualLearner(trainer, strategy, hierarchy, {
        batch: cfg.batchSize, epochs: cfg.epochs, seed: (cfg.seed ^ hashId(this.options.agentId)) >>> 0, optimizer: 'sgd',
        plugins: [{ name: 'round-loss', afterStep: ({ loss }) => { lossSum += loss; steps++; } }],
      });
      const timing = await learner.trainTask(shard.train, task, this.#persisted.roundsTrained);
      if (signal.aborted) throw new StrataError('STRATA_ERR_ABORTED', 'training aborted');
      const local = trainer.evaluate(shard.train, { indices: task.indices });
      const weights = getFlatWeights(m.model);
      this.#persisted = { cursor: (this.#persisted.cursor + task.indices.length) % shard.train.count, roundsTrained: this.#persisted.roundsTrained + 1 };
      this.#saveState();
      const hostSeconds = (performance.now() - started) / 1000;
      const stats = hierarchy?.stats();
      const fetched = (stats?.swap?.fetched ?? 0) - fetchedBefore;
      const sampleBytes = ds.featureSize * (shard.train.features instanceof Uint8Array ? 1 : 4) + 1;
      const frameBytes = WEIGHT_FRAME_HEADER_BYTES + m.numParams * 4;
      const clock = this.#meter.clock;
      clock.reset();
      clock.compute({ flops: timing.flops, hostSeconds: timing.computeSeconds });
      if (hierarchy) clock.storage({ writeBytes: timing.streamSamples * sampleBytes, writes: 1, readBytes: fetched * sampleBytes, reads: fetched });
      clock.network({ downBytes: frameBytes, upBytes: frameBytes, roundTrips: 1 });
      const energy = this.#meter.report();
      const c = energy.components;
      const metrics = {
        numSamples: timing.streamSamples, loss: steps > 0 ? lossSum / steps : Number.NaN, accuracy: local.accuracy,
        deviceSeconds: energy.deviceSeconds, hostSeconds,
      };
      this.#rounds.push({
        roundId: a.roundId, modelVersion: a.modelVersion, streamSamples: timing.streamSamples, replaySamples: timing.replaySamples,
        loss: metrics.loss, accuracy: metrics.accuracy, hostSeconds, deviceSeconds: energy.deviceSeconds, joules: energy.total.joules,
        fedproxMu: cfg.fedproxMu ?? null,
      });
      this.#log.info({
        roundId: a.roundId, modelVersion: a.modelVersion, method: method.name, fedproxMu: cfg.fedproxMu ?? null, ...metrics,
        replaySamples: timing.replaySamples, joules: energy.total.joules, emSize: stats?.emSize ?? 0, storedSamples: stats?.storedSamples ?? 0,
        swapsApplied: stats?.swap?.applied ?? 0,
      }, 'round trained');
      return {
        weights, metrics, energySource: 'model',
        joules: { compute: c.compute.joules, storage: c.storage.joules, radio: c.radio.joules, idle: c.idle.joules, total: energy.total.joules },
      };
    } finally {
      prox?.dispose();
      trainer.dispose();
    }
  }

  /** The next `samplesPerRound` samples of the device's stream (wrapping round its shard) as one CL task. */
  #nextTask(): ClTaskRows {
    const shard = this.#shard!;
    const n = Math.min(this.options.samplesPerRound, shard.train.count);
    const start = this.#persisted.cursor % shard.train.count;
    const indices = Int32Array.from({ length: n }, (_, k) => (start + k) % shard.train.count);
    const classes = [...new Set(Array.from(indices, (i) => shard.train.labels[i]!))].sort((x, y) => x - y);
    return { id: this.#persisted.roundsTrained, classes, indices };
  }

  /** The local model for an assignment; its layout must be the coordinator's. */
  #modelFor(a: RoundAssignmentMessage): LocalModel {
    if (this.#model?.kind !== a.config.model) {
      this.#model?.model.dispose();
      const ds = this.#dataset!;
      const model = createModel({ kind: parseModelKind(a.config.model, 'config.model'), inputShape: ds.inputShape, numClasses: ds.numClasses, seed: this.options.seed });
      const layout = layoutOf(model);
      this.#model = {
        kind: a.config.model, model, numParams: layout.totalSize,
        layoutHash: computeLayoutHash(layout.entries.map((e) => ({ name: e.name, shape: e.shape }))),
      };
    }
    const m = this.#model;
    if (m.layoutHash !== a.layoutHash || m.numParams !== a.numParams) {
      throw new StrataError('STRATA_ERR_LAYOUT_MISMATCH', `round ${a.roundId}: the coordinator's model (${a.layoutHash}, ${a.numParams} params) is not this device's ${a.config.model} on ${this.options.dataset} (${m.layoutHash}, ${m.numParams})`, {
        expected: a.layoutHash, actual: m.layoutHash,
      });
    }
    return m;
  }

  async #hierarchyFor(storesLogits: boolean): Promise<MemoryHierarchy> {
    if (this.#hierarchy !== undefined && this.#hierarchy.options.storesLogits === storesLogits) return this.#hierarchy;
    await this.#hierarchy?.close();
    const o = this.options;
    const ds = this.#dataset!;
    this.#hierarchy = await MemoryHierarchy.open({
      memorySize: o.memory, featureSize: ds.featureSize, featureType: this.#shard!.train.features instanceof Uint8Array ? 'uint8' : 'float32',
      numClasses: ds.numClasses, storesLogits, storage: o.storage, swap: o.swap, swapRatio: o.swapRatio, policy: o.policy,
      storageLatencyMs: 0, storeFile: path.resolve(o.db), dir: path.dirname(path.resolve(o.db)), seed: o.seed,
      logger: this.#log.child({ component: 'memory' }),
    });
    return this.#hierarchy;
  }

  #loadState(): PersistedState {
    if (!existsSync(this.#stateFile)) return { cursor: 0, roundsTrained: 0 };
    try {
      const s = JSON.parse(readFileSync(this.#stateFile, 'utf8')) as Partial<PersistedState>;
      const ok = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
      return { cursor: ok(s.cursor) ? s.cursor : 0, roundsTrained: ok(s.roundsTrained) ? s.roundsTrained : 0 };
    } catch {
      this.#log.warn({ file: this.#stateFile }, 'agent state unreadable; starting the stream over');
      return { cursor: 0, roundsTrained: 0 };
    }
  }

  #saveState(): void {
    const tmp = `${this.#stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.#persisted));
    renameSync(tmp, this.#stateFile);
  }
}

/** A stable 32-bit hash of the agent id, so agents given the same round seed still sample differently. */
function hashId(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}
