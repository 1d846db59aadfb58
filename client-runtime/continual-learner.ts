import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { ClassIncrementalScenario, ClTask } from '../ml/datasets/class-incremental.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { Rng } from '../ml/rng.js';
import type { Trainer } from '../ml/trainer.js';
import type { ClStrategy, ComposedBatch, StepContext } from './cl-strategies/cl-strategy.js';
import { clMetrics, type ClMetrics } from './cl-metrics.js';
import { hostBusyClock, type BusyClock } from './device-accounting.js';
import type { EpisodicMemory } from './carm/episodic-memory.js';
import type { ReplayedSampleInfo } from './carm/swap-policy.js';

/**
 * What the loop needs of its memory plugin: CarM's `MemoryHierarchy`, or
 * Miro's trial memory (a scaled-down copy of the EM for profiling trials).
 */
export interface ReplayMemory {
  readonly memory: EpisodicMemory;
  /** Whether swaps run (they start from the second task). */
  readonly swapping: boolean;
  readonly policyNeedsPredictions: boolean;
  memorySplit(): DataSplit;
  stepBoundary(): number;
  onStreamBatch(split: DataSplit, indices: ArrayLike<number>, task: number, logits: Float32Array | null, persist: boolean): void;
  afterStep(replayed: readonly ReplayedSampleInfo[], epochProgress: number): void;
  endTask(): Promise<void>;
  /** Stored-sample reads requested by swapping so far. */
  readonly swapReads: number;
  /** Seconds the training loop waited on storage so far (sync swapping). */
  readonly storageWaitSeconds: number;
  /**
   * Busy-clock seconds the loop itself spent reading storage inline so far
   * (Miro's trial memory), excluded from compute; absent when reads run
   * elsewhere (the swap worker) or only block (sync waits use no CPU).
   */
  readonly storageBusySeconds?: number;
  /** Stream samples handed to the store so far. */
  readonly persistedSamples: number;
  /** Swap ratio in force (0 without swapping). */
  readonly swapRatio: number;
}

export interface ContinualLearnerOptions {
  /** Stream samples per batch. */
  batch: number;
  /** Epochs over each task's stream. */
  epochs: number;
  seed: number;
  logger?: Logger;
  /** Called after every step (progress bars). */
  onStep?: (p: { task: number; tasks: number; step: number; stepsPerTask: number; loss: number }) => void;
  /** Called at each task boundary, before the next task (Miro's profiler hooks here). */
  onTaskBoundary?: (p: { finished: ClTask; next: ClTask | undefined }) => Promise<void> | void;
  /** Called when a task's training is done (device accounting hooks here). */
  onTaskTrained?: (timing: TaskTiming) => void;
  /** Called before each task's training, the first task included (Miro can profile before task 0). */
  beforeTask?: (p: { task: ClTask; index: number }) => Promise<void> | void;
  /**
   * Stream buffer: the fraction of each task's stream the device keeps and
   * trains on, in (0, 1]; the rest is dropped (not trained, stored or
   * remembered). Default 1. Changed between tasks with `setStreamBuffer`.
   */
  streamBuffer?: number;
  /**
   * Samples at the end of each task's stream held out from training (a
   * validation set the device keeps, e.g. for Miro's trials). Default 0.
   */
  holdoutPerTask?: number;
  /** How compute is timed (see `BusyClock`). Default: this thread's CPU time where the OS exposes it. */
  busyClock?: BusyClock;
}

export interface TaskTiming {
  task: number;
  trainSeconds: number;
  /**
   * The compute part of training, on the busy clock (`computeClock`): CPU
   * time of the training loop, without time descheduled by other load,
   * storage waits, or inline storage reads.
   */
  computeSeconds: number;
  /** The clock `computeSeconds` was measured on. */
  computeClock: BusyClock['source'];
  streamSamples: number;
  replaySamples: number;
  steps: number;
  /** Stream-buffer fraction in force for the task. */
  streamBuffer: number;
  /** EM capacity during the task (0 without a memory). */
  emCapacity: number;
  /** Swap ratio during the task (0 without swapping). */
  swapRatio: number;
  /** Stream samples handed to the store during the task. */
  persistedSamples: number;
  /** Stored-sample reads requested by swapping during the task. */
  swapReads: number;
  /** Leading stream samples trained already (Miro's reused trial, see `setPretrainedPrefix`): observed and stored, not trained again. */
  pretrainedSamples: number;
}

export interface ClRunResult extends ClMetrics {
  trainSeconds: number;
  evalSeconds: number;
  streamSamples: number;
  replaySamples: number;
  /** Stream + replay samples trained per second of training. */
  samplesPerSecond: number;
  tasks: TaskTiming[];
}

/**
 * The continual-learning loop: tasks arrive one after another; each step
 * trains on `batch` stream samples plus whatever the strategy replays from
 * the memory hierarchy; after each task the model is tested on every task.
 */
export class ContinualLearner {
  readonly #trainer: Trainer;
  readonly #strategy: ClStrategy;
  readonly #memory: ReplayMemory | undefined;
  readonly #options: Readonly<ContinualLearnerOptions>;
  readonly #rng: Rng;
  readonly #busy: BusyClock;
  #streamBuffer: number;
  #pretrained = 0;

  constructor(trainer: Trainer, strategy: ClStrategy, memory: ReplayMemory | undefined, options: ContinualLearnerOptions) {
    this.#trainer = trainer;
    this.#strategy = strategy;
    this.#memory = memory;
    this.#options = Object.freeze({ ...options });
    this.#rng = new Rng(options.seed * 7919 + 13);
    this.#streamBuffer = checkFraction(options.streamBuffer ?? 1);
    this.#busy = options.busyClock ?? hostBusyClock();
  }

  get streamBuffer(): number {
    return this.#streamBuffer;
  }

  /** The stream-buffer fraction for the tasks that follow. */
  setStreamBuffer(fraction: number): void {
    this.#streamBuffer = checkFraction(fraction);
  }

  /**
   * The next task's first `n` kept stream samples were trained already (by a
   * Miro trial whose weights the model now holds): its first epoch hands
   * them to the memory (EM and store) without training on them again.
   * One-shot: applies to the next `trainTask` only.
   */
  setPretrainedPrefix(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new StrataError('STRATA_ERR_BAD_OPTION', `pretrained prefix must be an integer >= 0, got ${n}`, { option: 'pretrained' });
    this.#pretrained = n;
  }

  /** Stream samples of `task` available for training (the held-out tail excluded). */
  availableIndices(task: ClTask): Int32Array {
    const n = task.trainIndices.length;
    const h = Math.min(this.#options.holdoutPerTask ?? 0, Math.floor(n / 2));
    return task.trainIndices.subarray(0, n - h);
  }

  /** The held-out tail of `task`'s stream (never trained on). */
  holdoutIndices(task: ClTask): Int32Array {
    return task.trainIndices.subarray(this.availableIndices(task).length);
  }

  /** The stream samples the device keeps of `task` under stream-buffer fraction `fraction`. */
  keptIndices(task: ClTask, fraction = this.#streamBuffer): Int32Array {
    const avail = this.availableIndices(task);
    return avail.subarray(0, Math.max(1, Math.min(avail.length, Math.ceil(fraction * avail.length))));
  }

  async run(scenario: ClassIncrementalScenario): Promise<ClRunResult> {
    const T = scenario.tasks.length;
    const R: number[][] = [];
    const seenAcc: number[] = [];
    const timings: TaskTiming[] = [];
    let evalSeconds = 0;
    for (let t = 0; t < T; t++) {
      const task = scenario.tasks[t]!;
      await this.#options.beforeTask?.({ task, index: t });
      const timing = await this.trainTask(scenario, task, t);
      timings.push(timing);
      this.#options.onTaskTrained?.(timing);
      const evalStart = performance.now();
      const row = scenario.tasks.map((other) => this.#trainer.evaluate(scenario.dataset.test, { indices: other.testIndices }).accuracy);
      R.push(row);
      // Accuracy on all seen classes is the test-count-weighted mean of the row's seen tasks:
      // derived, not a second pass over the same test samples.
      const seen = scenario.tasks.slice(0, t + 1);
      const seenCount = seen.reduce((n, x) => n + x.testIndices.length, 0);
      seenAcc.push(seenCount === 0 ? 0 : seen.reduce((sum, x, j) => sum + row[j]! * x.testIndices.length, 0) / seenCount);
      evalSeconds += (performance.now() - evalStart) / 1000;
      this.#options.logger?.info({ task: t, classes: task.classes, accuracySeen: seenAcc[t], row }, `task ${t + 1}/${T} done`);
      await this.#options.onTaskBoundary?.({ finished: task, next: scenario.tasks[t + 1] });
    }
    const trainSeconds = timings.reduce((s, x) => s + x.trainSeconds, 0);
    const streamSamples = timings.reduce((s, x) => s + x.streamSamples, 0);
    const replaySamples = timings.reduce((s, x) => s + x.replaySamples, 0);
    return {
      ...clMetrics(R, seenAcc),
      trainSeconds,
      evalSeconds,
      streamSamples,
      replaySamples,
      samplesPerSecond: (streamSamples + replaySamples) / trainSeconds,
      tasks: timings,
    };
  }

  /** Trains one task's stream; returns its timing. */
  async trainTask(scenario: ClassIncrementalScenario, task: ClTask, t: number, kept: Int32Array = this.keptIndices(task)): Promise<TaskTiming> {
    const { batch, epochs } = this.#options;
    const strategy = this.#strategy;
    const memory = strategy.usesMemory ? this.#memory : undefined;
    const train = scenario.dataset.train;
    const nc = scenario.dataset.numClasses;
    strategy.beforeTask?.(task);
    const pretrained = Math.min(this.#pretrained, kept.length);
    this.#pretrained = 0;
    const stepsPerTask = Math.ceil((kept.length - pretrained) / batch) + (epochs - 1) * Math.ceil(kept.length / batch);
    const before = {
      reads: memory?.swapReads ?? 0, wait: memory?.storageWaitSeconds ?? 0, busy: memory?.storageBusySeconds ?? 0, persisted: memory?.persistedSamples ?? 0,
    };
    const emCapacity = memory?.memory.capacity ?? 0;
    const swapRatio = memory?.swapping === true ? memory.swapRatio : 0;
    const started = performance.now();
    const busyStarted = this.#busy.seconds();
    let streamSamples = 0;
    let replaySamples = 0;
    let steps = 0;
    // The pretrained prefix enters the memory as its training would have left it there (logits aside), untrained.
    for (let s = 0; memory !== undefined && s < pretrained; s += batch) {
      memory.onStreamBatch(train, kept.subarray(s, Math.min(pretrained, s + batch)), t, null, true);
    }
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = epoch === 0 ? kept.subarray(pretrained) : this.#rng.shuffle(Int32Array.from(kept));
      const stepsPerEpoch = Math.ceil(order.length / batch);
      for (let s = 0; s < stepsPerEpoch; s++) {
        const streamIndices = order.subarray(s * batch, Math.min(order.length, (s + 1) * batch));
        memory?.stepBoundary();
        const memSplit: DataSplit | undefined = memory?.memorySplit();
        const r = memory === undefined ? 0 : strategy.replayCount(streamIndices.length, memSplit!.count);
        const replaySlots = r > 0 ? memory!.memory.sampleSlots(r, this.#rng) : new Int32Array(0);
        const composed: ComposedBatch = { streamIndices, replaySlots };
        const ctx: StepContext = { task, epoch, epochs, replayLogits: strategy.storesLogits ? this.#gatherLogits(memory, replaySlots, nc) : null };
        const swapNow = memory !== undefined && memory.swapping && t > 0 && replaySlots.length > 0;
        const needLogits = strategy.storesLogits || (swapNow && memory.policyNeedsPredictions);
        const parts = [{ split: train, indices: streamIndices }];
        if (replaySlots.length > 0) parts.push({ split: memSplit!, indices: replaySlots });
        const tensors = this.#trainer.batchBuilder.buildMixed(parts);
        let result: { loss: number; logits: Float32Array | null };
        try {
          result = this.#trainer.stepWithLogits(tensors.x, tensors.y, strategy.lossTerm?.(composed, ctx), needLogits);
        } finally {
          tensors.x.dispose();
          tensors.y.dispose();
        }
        strategy.afterStep?.(composed, ctx);
        // Swaps are asked for before the stream is offered to the EM: a slot the reservoir then
        // overwrites gets a new generation, so its now-stale swap is dropped, and the labels read
        // here are still those of the samples the logits belong to.
        if (swapNow) {
          memory.afterStep(replayedInfo(replaySlots, memSplit!.labels, streamIndices.length, result.logits, nc), (epoch + s / stepsPerEpoch) / epochs);
        }
        memory?.onStreamBatch(train, streamIndices, t, result.logits, epoch === 0);
        streamSamples += streamIndices.length;
        replaySamples += replaySlots.length;
        steps++;
        this.#options.onStep?.({ task: t, tasks: scenario.tasks.length, step: steps, stepsPerTask, loss: result.loss });
      }
    }
    const trainSeconds = (performance.now() - started) / 1000;
    const busySeconds = this.#busy.seconds() - busyStarted;
    // On a CPU clock, blocked waits cost nothing and only inline reads are taken out; on the wall clock, every storage wait.
    const notCompute = this.#busy.source === 'wall'
      ? (memory?.storageWaitSeconds ?? 0) - before.wait
      : (memory?.storageBusySeconds ?? 0) - before.busy;
    // Committing the task's samples is the background writer's job; waiting for it is not training time.
    await memory?.endTask();
    strategy.afterTask?.(task);
    return {
      task: t, trainSeconds, computeSeconds: Math.max(0, busySeconds - notCompute), computeClock: this.#busy.source, streamSamples, replaySamples, steps,
      streamBuffer: kept.length / Math.max(1, this.availableIndices(task).length), emCapacity, swapRatio,
      persistedSamples: (memory?.persistedSamples ?? 0) - before.persisted, swapReads: (memory?.swapReads ?? 0) - before.reads,
      pretrainedSamples: pretrained,
    };
  }

  #gatherLogits(memory: ReplayMemory | undefined, slots: Int32Array, nc: number): Float32Array | null {
    if (memory === undefined || slots.length === 0) return null;
    const out = new Float32Array(slots.length * nc);
    for (let k = 0; k < slots.length; k++) {
      const l = memory.memory.logitsOf(slots[k]!);
      if (l !== null) out.set(l, k * nc);
    }
    return out;
  }
}

function checkFraction(f: number): number {
  if (!(f > 0 && f <= 1)) throw new StrataError('STRATA_ERR_BAD_OPTION', `stream buffer must be a fraction in (0, 1], got ${f}`, { option: 'streamBuffer' });
  return f;
}

/** Correctness and predictive entropy of each replayed sample, for the swap policy. */
function replayedInfo(slots: Int32Array, labels: Uint8Array, offset: number, logits: Float32Array | null, nc: number): ReplayedSampleInfo[] {
  const out: ReplayedSampleInfo[] = [];
  for (let k = 0; k < slots.length; k++) {
    const slot = slots[k]!;
    const label = labels[slot]!;
    if (logits === null) {
      out.push({ slot, label, correct: false, entropy: 0 });
      continue;
    }
    const row = logits.subarray((offset + k) * nc, (offset + k + 1) * nc);
    let max = Number.NEGATIVE_INFINITY;
    let arg = 0;
    for (let c = 0; c < nc; c++) if (row[c]! > max) { max = row[c]!; arg = c; }
    let z = 0;
    for (let c = 0; c < nc; c++) z += Math.exp(row[c]! - max);
    let entropy = 0;
    for (let c = 0; c < nc; c++) {
      const p = Math.exp(row[c]! - max) / z;
      if (p > 0) entropy -= p * Math.log(p);
    }
    out.push({ slot, label, correct: arg === label, entropy });
  }
  return out;
}
