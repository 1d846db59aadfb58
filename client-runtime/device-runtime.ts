import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { Trainer } from '../ml/trainer.js';
import { getFlatWeights, setFlatWeights } from '../ml/weights.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { roundTraffic, type DeviceReport, type Joules, type ResultMetrics, type TrainingConfig } from '../protocol/index.js';
import { MemoryHierarchy, type MemoryHierarchyStats, type StorageBudget } from './carm/memory-hierarchy.js';
import type { SwapMode } from './carm/swap-manager.js';
import type { SwapPolicyName } from './carm/swap-policy.js';
import { BUILTIN_CL_METHODS, checkClMethods, findClMethod, type ClMethod, type ClMethodFactory } from './cl-methods/index.js';
import type { ClPlugin, StepReport } from './cl-plugin.js';
import { ContinualLearner, splitHoldout } from './continual-learner.js';
import { DeviceAccounting } from './device-accounting.js';
import { DeviceAccountingPlugin } from './device-accounting-plugin.js';
import { DeviceStateFiles, initialDeviceState, type DeviceState } from './device-state.js';
import type { SampleStream, StreamChunk } from './device-stream.js';
import { LiveStream } from './live-stream.js';
import type { ArrivingSample } from '../storage-tier/arrival-log.js';
import { MiroPlugin, type BoundaryRecord, type MiroState } from './miro/miro-plugin.js';
import type { MiroOptions } from './miro/miro-options.js';
import { proximalTerm, withExtraLoss } from './proximal-term.js';

/** The device's memory hierarchy (CarM): EM slots in RAM, what the store keeps, how samples are swapped. */
export interface DeviceMemoryOptions {
  slots: number;
  storage: StorageBudget;
  swap: SwapMode;
  swapRatio: number;
  policy: SwapPolicyName;
  /** Per stored-sample read latency the swap reader really waits (slow SD cards). Default 0. */
  storageLatencyMs?: number;
}

export interface DeviceRuntimeOptions {
  /** The device's id (mixed into its sampling seed, so devices given one round seed still sample differently). */
  clientId: string;
  profile: DeviceProfile;
  /** The device's model: its layout must be the coordinator's. Weights are set from each round's global model. */
  model: tf.LayersModel;
  /** The device's samples and when they arrive: its data on a schedule (`DeviceStream`) or fed live (`LiveStream`, `ingest`). */
  stream: SampleStream;
  featureSize: number;
  numClasses: number;
  /** Multiplier from stored sample values to inputs (1/255 for bytes). */
  scale: number;
  /**
   * The device's sample store (CarM's storage tier); its state and EM
   * snapshot are kept beside it. null: the device keeps nothing between
   * rounds (only for methods without a memory on a `whole` stream).
   */
  storeFile: string | null;
  memory: DeviceMemoryOptions;
  /** `miro`: Miro profiles at each task boundary (new classes in the stream) and reconfigures the memory hierarchy. */
  profiler: 'off' | 'miro';
  /** The CL methods this device can run; a round's training config names one. Default `BUILTIN_CL_METHODS`. */
  methods?: readonly ClMethodFactory[];
  /** Your own plugins of the CL loop (after device accounting and Miro; see `ClPlugin`). Default none. */
  plugins?: readonly ClPlugin[];
  miro?: MiroOptions;
  seed: number;
  logger?: Logger;
  /** After every training step (a simulation's duty-cycle budget paces the thread here). */
  afterStep?: () => void;
}

/** The assignment, as far as training needs it. */
export interface RoundWork {
  roundId: number;
  modelVersion: number;
  numParams: number;
  config: TrainingConfig;
}

/** One trained round: the update and what the device says about it. */
export interface RoundOutcome {
  /** Local weights minus the global model it started from. */
  delta: Float32Array;
  metrics: ResultMetrics;
  joules: Joules;
  energySource: 'model' | 'rapl' | 'measured';
  device: DeviceReport;
  replaySamples: number;
  memory: MemoryHierarchyStats | null;
}

/**
 * The device runtime every client runs, the agent and each simulated client
 * alike: its model, a continual-learning method (from the round's training
 * config), the CarM memory hierarchy, its plugins (device accounting; Miro
 * at task boundaries) over its own stream of samples. Each round it takes
 * in what arrived since it last trained (earlier rounds' slices stored and
 * remembered, the newest trained), starts from the global model with a
 * fresh optimizer, and returns the delta with its device time and joules,
 * priced from counted work by its profile.
 *
 * A round is self-contained: the memory hierarchy is opened and its EM
 * restored at the start, and everything the device keeps (stream position,
 * classes and tasks seen, held-out samples, EM, Miro's state, its energy so
 * far) is saved beside its store at the end. So an agent's next round, a
 * restarted agent, and a simulated client's next job on another slot all
 * carry on from the same state the same way.
 */
export class DeviceRuntime {
  readonly options: Readonly<DeviceRuntimeOptions>;
  readonly #files: DeviceStateFiles | null;
  readonly #log: Logger | undefined;
  #state: DeviceState;
  #memory: MemoryHierarchyStats | null = null;
  #closed = false;

  constructor(options: DeviceRuntimeOptions) {
    if (options.methods !== undefined) checkClMethods(options.methods);
    this.options = Object.freeze({ ...options });
    this.#log = options.logger;
    this.#files = options.storeFile === null ? null : new DeviceStateFiles(options.storeFile);
    this.#state = this.#files?.load((file) => this.#log?.warn({ file }, 'device state unreadable; starting the stream over')) ?? initialDeviceState();
  }

  get state(): Readonly<DeviceState> {
    return this.#state;
  }

  /**
   * Takes in samples arriving at a live device (its stream is a
   * `LiveStream`): committed to its store before this returns; the next
   * round learns from them. Returns the newest arrival id. With
   * `options.key` the batch is taken in at most once (see DeviceAgent.ingest).
   */
  ingest(samples: readonly ArrivingSample[], options: { key?: string } = {}): number {
    const stream = this.options.stream;
    if (!(stream instanceof LiveStream)) throw new StrataError('STRATA_ERR_STATE', 'ingest() needs a device fed live (stream: a LiveStream)', { state: 'scheduled-stream' });
    return stream.ingest(samples, options.key).lastId;
  }

  /** The memory hierarchy after the last round (null before one, or without a memory). */
  memoryStats(): MemoryHierarchyStats | null {
    return this.#memory;
  }

  /** Trains round `a` from the global weights; the device's state is saved before it returns. */
  async trainRound(a: RoundWork, global: Float32Array, signal?: AbortSignal): Promise<RoundOutcome> {
    if (this.#closed) throw new StrataError('STRATA_ERR_STATE', 'device runtime is closed');
    const started = performance.now();
    const o = this.options;
    const cfg = a.config;
    const state = this.#state;
    // Fresh randomness each round and each device, the same wherever the round runs.
    const seed = mixSeed((o.seed ^ hashId(o.clientId)) >>> 0, state.roundsTrained);
    const view = o.stream.open(a.roundId, state.position, state.validation);
    const { split, arrivals, next } = view;
    let validation = view.validation;
    // The protocol's replay is a ratio (replayed per stream sample); the CL methods count per step.
    const method = findClMethod(o.methods ?? BUILTIN_CL_METHODS, cfg.method).create({ replay: Math.round(cfg.replay * cfg.batchSize), batchSize: cfg.batchSize });
    const optimizer = cfg.optimizer ?? 'sgd';
    const makeTrainer = (): Trainer => new Trainer(o.model, { optimizer, learningRate: cfg.learningRate, featureSize: o.featureSize, numClasses: o.numClasses, scale: o.scale });
    const accounting = new DeviceAccounting(o.profile, { carried: state.energy });
    if (signal?.aborted === true) throw new StrataError('STRATA_ERR_ABORTED', 'training aborted');
    let hierarchy: MemoryHierarchy | undefined;
    let miro: MiroPlugin | undefined;
    let trainer: Trainer | undefined;
    let prox: ReturnType<typeof proximalTerm> | undefined;
    // The state changes below are saved only when the round completes: a failed round leaves the device as it was.
    const before = structuredClone(state);
    let succeeded = false;
    try {
      if (method.usesMemory) hierarchy = await this.#openMemory(method, seed, split);
      // Earlier rounds' arrivals the device was not picked for: stored and remembered, not trained on.
      for (const chunk of arrivals.backlog) hierarchy?.onStreamBatch(split, chunk.indices, this.#taskOf(chunk), null, true);
      if (arrivals.backlog.length > 0) await hierarchy?.endTask();
      const chunk = arrivals.train;
      const task = this.#taskOf(chunk);
      const boundary = task !== state.lastTrainedTask;
      if (o.profiler === 'miro') {
        if (hierarchy === undefined) {
          throw new StrataError('STRATA_ERR_BAD_OPTION', `--profiler miro tunes the episodic memory: method ${method.name} has none (use er or derpp)`, { option: 'profiler' });
        }
        miro = new MiroPlugin({
          knobs: hierarchy, strategy: method, model: o.model, makeTrainer, optimizer, accounting, batch: cfg.batchSize, epochs: cfg.epochs, seed,
          ...(o.logger ? { logger: o.logger.child({ component: 'miro' }) } : {}),
        }, o.miro ?? {}, state.plugins['miro'] as MiroState | undefined);
      }
      let rows = chunk.indices;
      if (boundary && miro !== undefined) {
        // Miro's validation: a few of each new task's samples, held out for good.
        const { available, heldOut } = splitHoldout(rows, miro.options.validationPerTask);
        rows = available;
        validation = view.holdOut(Int32Array.from(heldOut));
      }
      setFlatWeights(o.model, global);
      trainer = makeTrainer();
      prox = cfg.fedproxMu !== undefined && cfg.fedproxMu > 0 ? proximalTerm(o.model, global, cfg.fedproxMu) : undefined;
      const strategy: ClMethod = prox ? withExtraLoss(method, prox.term) : method;
      const tally = new StepTally(o.afterStep);
      const plugins: ClPlugin[] = [new DeviceAccountingPlugin(accounting, { sampleBytes: hierarchy?.sampleBytes ?? this.#sampleBytes(method, split) })];
      if (miro !== undefined) plugins.push(miro);
      plugins.push(...(o.plugins ?? []), tally);
      const learner = new ContinualLearner(trainer, strategy, hierarchy, {
        batch: cfg.batchSize, epochs: cfg.epochs, seed: (cfg.seed ^ hashId(o.clientId)) >>> 0, optimizer, plugins, trackAccuracy: true,
        streamBuffer: state.knobs?.streamBuffer ?? 1, ...(o.logger ? { logger: o.logger } : {}),
      });
      const profiledBefore = miro?.boundaries.length ?? 0;
      accounting.start();
      const timing = await learner.trainTask(split, { id: task, classes: chunk.classes, indices: rows }, task, {
        boundary, validation, swap: state.roundsTrained > 0,
      });
      // The round's radio work: the model down, the update up, their round trips (one count: protocol/round-traffic.ts).
      accounting.account('training', { flops: 0, network: roundTraffic(a.numParams) });
      const delta = getFlatWeights(o.model);
      for (let i = 0; i < delta.length; i++) delta[i] = delta[i]! - global[i]!;
      const report = accounting.finish();
      state.position = next;
      state.validation = view.keptValidation();
      state.lastTrainedTask = task;
      state.roundsTrained++;
      state.energy = { joules: state.energy.joules + report.energy.total, profilingJoules: state.energy.profilingJoules + report.profiling.joules };
      if (hierarchy !== undefined) state.knobs = { memory: hierarchy.capacity, streamBuffer: learner.streamBuffer, swapRatio: hierarchy.configuredSwapRatio };
      if (miro !== undefined) state.plugins['miro'] = miro.exportState();
      this.#save(hierarchy);
      const profiled = miro !== undefined && miro.boundaries.length > profiledBefore ? miro.lastBoundary : undefined;
      const device: DeviceReport = {
        task,
        ...(state.knobs !== null ? { config: { ...state.knobs } } : {}),
        ...(miro !== undefined ? { profilingJoules: report.profiling.joules } : {}),
        ...(profiled !== undefined ? { boundary: boundaryReport(profiled) } : {}),
      };
      const e = report.energy;
      succeeded = true;
      return {
        delta,
        metrics: {
          numSamples: timing.streamSamples + timing.pretrainedSamples, loss: tally.meanLoss, accuracy: tally.accuracy,
          deviceSeconds: report.deviceSeconds, hostSeconds: (performance.now() - started) / 1000,
        },
        joules: { compute: e.compute, storage: e.storage, radio: e.radio, idle: e.idle, total: e.total },
        energySource: e.source === 'model' ? 'model' : e.source.startsWith('rapl') ? 'rapl' : 'measured',
        device,
        replaySamples: timing.replaySamples,
        memory: hierarchy?.stats() ?? null,
      };
    } catch (err) {
      this.#state = before;
      throw err;
    } finally {
      prox?.dispose();
      trainer?.dispose();
      if (accounting.meter.state === 'running') accounting.meter.stop();
      miro?.close();
      if (hierarchy !== undefined) {
        this.#memory = hierarchy.stats();
        await hierarchy.close();
      }
      // Its samples are in the memory hierarchy's store now (the writer flushed at close): a live stream may drop them.
      if (succeeded) view.commit();
    }
  }

  /** Saves the state and closes a live stream's log (the runtime keeps nothing else open between rounds). */
  async close(): Promise<MemoryHierarchyStats | null> {
    if (!this.#closed) {
      this.#closed = true;
      this.#save(undefined);
      if (this.options.stream instanceof LiveStream) this.options.stream.close();
    }
    return this.#memory;
  }

  /** The CL task a chunk belongs to: a chunk bringing classes the device has not seen starts the next task. */
  #taskOf(chunk: StreamChunk): number {
    const seen = new Set(this.#state.seenClasses);
    const fresh = chunk.classes.filter((c) => !seen.has(c));
    if (fresh.length > 0) {
      if (seen.size > 0) this.#state.task++;
      this.#state.seenClasses = [...seen, ...fresh].sort((x, y) => x - y);
    }
    return this.#state.task;
  }

  /** The memory hierarchy for this round, its knobs as the device left them and its EM restored. */
  async #openMemory(method: ClMethod, seed: number, split: DataSplit): Promise<MemoryHierarchy> {
    const o = this.options;
    if (o.storeFile === null) throw new StrataError('STRATA_ERR_BAD_OPTION', `method ${method.name} keeps a memory: the device needs a store file`, { option: 'storeFile' });
    const m = o.memory;
    const knobs = this.#state.knobs;
    const hierarchy = await MemoryHierarchy.open({
      memorySize: knobs?.memory ?? m.slots, featureSize: o.featureSize, featureType: split.features instanceof Uint8Array ? 'uint8' : 'float32',
      numClasses: o.numClasses, storesLogits: method.storesLogits, storage: m.storage, swap: m.storage === 'none' ? 'off' : m.swap,
      swapRatio: knobs?.swapRatio ?? m.swapRatio, policy: m.policy, storageLatencyMs: m.storageLatencyMs ?? 0, storeFile: o.storeFile,
      dir: path.dirname(o.storeFile), seed, sampling: 'class-balanced',
      ...(o.logger ? { logger: o.logger.child({ component: 'memory' }) } : {}),
    });
    try {
      this.#files?.loadMemory(hierarchy.memory);
    } catch (err) {
      await hierarchy.close();
      throw err;
    }
    return hierarchy;
  }

  #sampleBytes(method: ClMethod, split: DataSplit): number {
    const o = this.options;
    return o.featureSize * (split.features instanceof Uint8Array ? 1 : 4) + (method.storesLogits ? o.numClasses * 4 : 0);
  }

  #save(hierarchy: MemoryHierarchy | undefined): void {
    if (this.#files === null) return;
    this.#files.save(this.#state);
    if (hierarchy !== undefined) this.#files.saveMemory(hierarchy.memory);
  }
}

/** What a result says of a profiled boundary: every candidate with its accuracy and joules, and the choice. */
function boundaryReport(b: BoundaryRecord): NonNullable<DeviceReport['boundary']> {
  return {
    task: b.task, chosen: b.chosen.key, skipped: b.skipped.length,
    candidates: b.candidates.map((c) => ({
      key: c.key, memory: c.memory, streamBuffer: c.streamBuffer, swapRatio: c.swapRatio,
      accuracy: Math.min(1, Math.max(0, c.accuracy)), joules: c.joules, kept: c.kept, chosen: c.chosen,
    })),
  };
}

function mixSeed(seed: number, round: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(round + 1, 0x85ebca6b)) >>> 0;
}

/** Mean loss and running accuracy of a round's steps; paces the thread after each (the simulation's duty cycle). */
class StepTally implements ClPlugin {
  readonly name = 'step-tally';
  readonly #pace: (() => void) | undefined;
  #loss = 0;
  #steps = 0;
  #correct = 0;
  #seen = 0;

  constructor(pace: (() => void) | undefined) {
    this.#pace = pace;
  }

  afterStep(s: StepReport): void {
    this.#loss += s.loss;
    this.#steps++;
    if (s.correct !== undefined) {
      this.#correct += s.correct;
      this.#seen += s.streamSamples;
    }
    this.#pace?.();
  }

  get meanLoss(): number {
    return this.#steps > 0 ? this.#loss / this.#steps : Number.NaN;
  }

  /** Share of the round's stream samples the model got right as it trained on them (no extra pass). */
  get accuracy(): number {
    return this.#seen > 0 ? this.#correct / this.#seen : 0;
  }
}

/** A stable 32-bit hash of a device id. */
export function hashId(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}
