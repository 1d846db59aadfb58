import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { ClassIncrementalScenario } from '../ml/datasets/class-incremental.js';
import { concatIndices, type DataSplit } from '../ml/datasets/dataset.js';
import { Rng } from '../ml/rng.js';
import type { OptimizerKind, Trainer } from '../ml/trainer.js';
import { trainingFlops, trainingWork, type TrainingWork } from '../ml/work-count.js';
import { hostBusyClock, type BusyClock } from './busy-clock.js';
import type { EpisodicMemory } from './carm/episodic-memory.js';
import type { ReplayedSampleInfo } from './carm/swap-policy.js';
import type { ClMethod, ComposedBatch, StepContext } from './cl-methods/cl-method.js';
import { clMetrics, type ClMetrics } from './cl-metrics.js';
import type { ClLoopControl, ClPlugin, ClTaskRows, TaskTiming } from './cl-plugin.js';

export type { ClLoopControl, ClPlugin, ClTaskRows, StepReport, TaskStart, TaskTiming } from './cl-plugin.js';

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
  /**
   * Stored-sample reads the swap policy asked for so far: what the device
   * reads. (CarM's async worker on this host may skip some when more than
   * its in-flight limit are pending, see `SwapStats.skipped`: a host
   * artefact that must not change the device's counted work.)
   */
  readonly swapReads: number;
  /** Stored-sample reads that filled a grown EM so far. */
  readonly fillReads: number;
  /** Seconds the training loop waited on storage so far (sync swapping). */
  readonly storageWaitSeconds: number;
  /**
   * Busy-clock seconds the loop itself spent reading storage inline so far
   * (Miro's trial memory), excluded from the compute diagnostic; absent when
   * reads run elsewhere (the swap worker) or only block (sync waits use no CPU).
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
  /** Epochs over each call's stream rows. */
  epochs: number;
  seed: number;
  /** The trainer's optimizer: its FLOPs per step are part of the counted work. */
  optimizer: OptimizerKind;
  logger?: Logger;
  /** Plugins, called in this order at each hook (device accounting, Miro, progress, ...). */
  plugins?: readonly ClPlugin[];
  /**
   * Stream buffer: the fraction of each call's stream rows the device keeps
   * and trains on, in (0, 1]; the rest is dropped (not trained, stored or
   * remembered). Default 1. Changed between tasks with `setStreamBuffer`.
   */
  streamBuffer?: number;
  /**
   * `run` only: samples at the end of each task's stream held out from
   * training (a validation set the device keeps, e.g. for Miro's trials).
   * Default 0.
   */
  holdoutPerTask?: number;
  /** How the host compute diagnostic is timed (see `BusyClock`). Default: this thread's CPU time where the OS exposes it. */
  busyClock?: BusyClock;
  /** Report each step's correct predictions on its stream samples (`StepReport.correct`), from the step's own forward pass. Default false. */
  trackAccuracy?: boolean;
}

/** How a `trainTask` call relates to the device's task sequence. */
export interface TrainTaskOptions {
  /**
   * Whether the call starts the task (a boundary: the strategy's and the
   * plugins' `beforeTask` run, e.g. Miro profiles) or continues it (a further
   * chunk of the same task, e.g. the next federated round). Default true.
   */
  boundary?: boolean;
  /** Held-out rows of the split for every task seen so far, this one included (the plugins' validation set). Default none. */
  validation?: Int32Array;
  /**
   * Whether swaps may run: the store holds samples from before this call.
   * Default: from the second task on (CarM's rule); a federated device
   * swaps from its second round on, whatever its task.
   */
  swap?: boolean;
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

/** A task's stream rows split into the rows trained on and the held-out tail (at most half of them). */
export function splitHoldout(rows: Int32Array, holdout: number): { available: Int32Array; heldOut: Int32Array } {
  const h = Math.min(Math.max(0, holdout), Math.floor(rows.length / 2));
  return { available: rows.subarray(0, rows.length - h), heldOut: rows.subarray(rows.length - h) };
}

/**
 * The continual-learning loop: tasks arrive one after another; each step
 * trains on `batch` stream samples plus whatever the strategy replays from
 * the memory hierarchy. `trainTask` trains one task (or one chunk of one)
 * from a data split and the task's rows; `run` goes through a whole
 * class-incremental scenario and tests the model on every task after each.
 * Plugins (`ClPlugin`) hook into task boundaries, steps and task ends.
 */
export class ContinualLearner implements ClLoopControl {
  readonly #trainer: Trainer;
  readonly #strategy: ClMethod;
  readonly #memory: ReplayMemory | undefined;
  readonly #options: Readonly<ContinualLearnerOptions>;
  readonly #rng: Rng;
  readonly #busy: BusyClock;
  readonly #plugins: readonly ClPlugin[];
  readonly #numClasses: number;
  /** What training costs in counted FLOPs: the model's per-sample work and the optimizer's per step. */
  readonly work: TrainingWork;
  #streamBuffer: number;
  #pretrained = 0;

  constructor(trainer: Trainer, strategy: ClMethod, memory: ReplayMemory | undefined, options: ContinualLearnerOptions) {
    this.#trainer = trainer;
    this.#strategy = strategy;
    this.#memory = memory;
    this.#options = Object.freeze({ ...options });
    this.#rng = new Rng(options.seed * 7919 + 13);
    this.#streamBuffer = checkFraction(options.streamBuffer ?? 1);
    this.#busy = options.busyClock ?? hostBusyClock();
    this.#plugins = Object.freeze([...(options.plugins ?? [])]);
    this.work = trainingWork(trainer.model, options.optimizer);
    this.#numClasses = trainer.model.outputs[0]?.shape.at(-1) ?? 0;
  }

  get streamBuffer(): number {
    return this.#streamBuffer;
  }

  /** The stream-buffer fraction for the tasks that follow. */
  setStreamBuffer(fraction: number): void {
    this.#streamBuffer = checkFraction(fraction);
  }

  /**
   * The next call's first `n` kept stream samples were trained already (by a
   * Miro trial whose weights the model now holds): its first epoch hands
   * them to the memory (EM and store) without training on them again.
   * One-shot: applies to the next `trainTask` only.
   */
  setPretrainedPrefix(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new StrataError('STRATA_ERR_BAD_OPTION', `pretrained prefix must be an integer >= 0, got ${n}`, { option: 'pretrained' });
    this.#pretrained = n;
  }

  /** The stream rows the device keeps of `rows` under stream-buffer fraction `fraction` (at least one). */
  keptIndices(rows: Int32Array, fraction = this.#streamBuffer): Int32Array {
    return rows.subarray(0, Math.max(1, Math.min(rows.length, Math.ceil(fraction * rows.length))));
  }

  /**
   * A whole class-incremental scenario: each task's stream, its last
   * `holdoutPerTask` rows held out (the plugins' validation set), then the
   * accuracy matrix row on every task's test samples.
   */
  async run(scenario: ClassIncrementalScenario): Promise<ClRunResult> {
    const T = scenario.tasks.length;
    const R: number[][] = [];
    const seenAcc: number[] = [];
    const timings: TaskTiming[] = [];
    const heldOut: Int32Array[] = [];
    let evalSeconds = 0;
    for (let t = 0; t < T; t++) {
      const task = scenario.tasks[t]!;
      const rows = splitHoldout(task.trainIndices, this.#options.holdoutPerTask ?? 0);
      heldOut.push(rows.heldOut);
      const timing = await this.trainTask(scenario.dataset.train, { id: task.id, classes: task.classes, indices: rows.available }, t, {
        boundary: true, validation: concatIndices(heldOut),
      });
      timings.push(timing);
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

  /**
   * Trains the rows `task.indices` of `split` (a whole task, or one chunk of
   * one) as task number `index` of the device's sequence (swaps start from
   * index 1). A boundary call (the default) first runs the strategy's and the
   * plugins' `beforeTask`, which may reconfigure the loop and the memory; the
   * stream buffer then keeps the leading share of the rows. Returns the
   * call's counted work and its host diagnostics, after the plugins'
   * `afterTask` have seen it.
   */
  async trainTask(split: DataSplit, task: ClTaskRows, index: number, options: TrainTaskOptions = {}): Promise<TaskTiming> {
    const { batch, epochs } = this.#options;
    const boundary = options.boundary ?? true;
    const mayswap = options.swap ?? index > 0;
    const strategy = this.#strategy;
    const memory = strategy.usesMemory ? this.#memory : undefined;
    const nc = this.#numClasses;
    // Taken before the boundary hooks, so that EM fills they cause (Miro's resize) count as this task's work.
    const before = {
      reads: memory?.swapReads ?? 0, fills: memory?.fillReads ?? 0, wait: memory?.storageWaitSeconds ?? 0,
      busy: memory?.storageBusySeconds ?? 0, persisted: memory?.persistedSamples ?? 0,
    };
    if (boundary) {
      strategy.beforeTask?.(task);
      const validation = options.validation ?? new Int32Array(0);
      for (const p of this.#plugins) await p.beforeTask?.({ loop: this, split, task, index, validation });
    }
    const kept = this.keptIndices(task.indices);
    const pretrained = Math.min(this.#pretrained, kept.length);
    this.#pretrained = 0;
    const stepsPlanned = Math.ceil((kept.length - pretrained) / batch) + (epochs - 1) * Math.ceil(kept.length / batch);
    const emCapacity = memory?.memory.capacity ?? 0;
    const swapRatio = memory?.swapping === true ? memory.swapRatio : 0;
    const started = performance.now();
    const busyStarted = this.#busy.seconds();
    let streamSamples = 0;
    let replaySamples = 0;
    let steps = 0;
    // The pretrained prefix enters the memory as its training would have left it there (logits aside), untrained.
    for (let s = 0; memory !== undefined && s < pretrained; s += batch) {
      memory.onStreamBatch(split, kept.subarray(s, Math.min(pretrained, s + batch)), index, null, true);
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
        const swapNow = memory !== undefined && memory.swapping && mayswap && replaySlots.length > 0;
        const needLogits = strategy.storesLogits || (swapNow && memory.policyNeedsPredictions) || this.#options.trackAccuracy === true;
        const parts = [{ split, indices: streamIndices }];
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
        memory?.onStreamBatch(split, streamIndices, index, result.logits, epoch === 0);
        streamSamples += streamIndices.length;
        replaySamples += replaySlots.length;
        steps++;
        const correct = this.#options.trackAccuracy === true && result.logits !== null ? correctOf(result.logits, split.labels, streamIndices, nc) : undefined;
        for (const p of this.#plugins) {
          p.afterStep?.({
            index, step: steps, steps: stepsPlanned, loss: result.loss, streamSamples: streamIndices.length, replaySamples: replaySlots.length,
            ...(correct !== undefined ? { correct } : {}),
          });
        }
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
    const timing: TaskTiming = {
      task: index, boundary, flops: trainingFlops(this.work, streamSamples + replaySamples, steps),
      trainSeconds, computeSeconds: Math.max(0, busySeconds - notCompute), computeClock: this.#busy.source, streamSamples, replaySamples, steps,
      streamBuffer: kept.length / Math.max(1, task.indices.length), emCapacity, swapRatio,
      persistedSamples: (memory?.persistedSamples ?? 0) - before.persisted, swapReads: (memory?.swapReads ?? 0) - before.reads,
      fillReads: (memory?.fillReads ?? 0) - before.fills, pretrainedSamples: pretrained,
    };
    for (const p of this.#plugins) await p.afterTask?.(timing);
    return timing;
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

/** How many of a step's stream rows (the batch's first rows) the logits predict right. */
function correctOf(logits: Float32Array, labels: Uint8Array, streamIndices: Int32Array, nc: number): number {
  let correct = 0;
  for (let k = 0; k < streamIndices.length; k++) {
    let arg = 0;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < nc; c++) {
      const v = logits[k * nc + c]!;
      if (v > max) { max = v; arg = c; }
    }
    if (arg === labels[streamIndices[k]!]) correct++;
  }
  return correct;
}
