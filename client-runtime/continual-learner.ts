import type { Logger } from 'pino';
import type { ClassIncrementalScenario, ClTask } from '../ml/datasets/class-incremental.js';
import { seenTestIndices } from '../ml/datasets/class-incremental.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { Rng } from '../ml/rng.js';
import type { Trainer } from '../ml/trainer.js';
import type { ClStrategy, ComposedBatch, StepContext } from './cl-strategies/cl-strategy.js';
import { clMetrics, type ClMetrics } from './cl-metrics.js';
import type { MemoryHierarchy } from './memory-hierarchy.js';
import type { ReplayedSampleInfo } from './swap-policy.js';

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
}

export interface TaskTiming {
  task: number;
  trainSeconds: number;
  streamSamples: number;
  replaySamples: number;
  steps: number;
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
  readonly #memory: MemoryHierarchy | undefined;
  readonly #options: Readonly<ContinualLearnerOptions>;
  readonly #rng: Rng;

  constructor(trainer: Trainer, strategy: ClStrategy, memory: MemoryHierarchy | undefined, options: ContinualLearnerOptions) {
    this.#trainer = trainer;
    this.#strategy = strategy;
    this.#memory = memory;
    this.#options = Object.freeze({ ...options });
    this.#rng = new Rng(options.seed * 7919 + 13);
  }

  async run(scenario: ClassIncrementalScenario): Promise<ClRunResult> {
    const T = scenario.tasks.length;
    const R: number[][] = [];
    const seenAcc: number[] = [];
    const timings: TaskTiming[] = [];
    let evalSeconds = 0;
    for (let t = 0; t < T; t++) {
      const task = scenario.tasks[t]!;
      timings.push(await this.trainTask(scenario, task, t));
      const evalStart = performance.now();
      const row = scenario.tasks.map((other) => this.#trainer.evaluate(scenario.dataset.test, { indices: other.testIndices }).accuracy);
      R.push(row);
      seenAcc.push(this.#trainer.evaluate(scenario.dataset.test, { indices: seenTestIndices(scenario, t) }).accuracy);
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
  async trainTask(scenario: ClassIncrementalScenario, task: ClTask, t: number): Promise<TaskTiming> {
    const { batch, epochs } = this.#options;
    const strategy = this.#strategy;
    const memory = strategy.usesMemory ? this.#memory : undefined;
    const train = scenario.dataset.train;
    const nc = scenario.dataset.numClasses;
    strategy.beforeTask?.(task);
    const stepsPerEpoch = Math.ceil(task.trainIndices.length / batch);
    const started = performance.now();
    let streamSamples = 0;
    let replaySamples = 0;
    let steps = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = epoch === 0 ? task.trainIndices : this.#rng.shuffle(Int32Array.from(task.trainIndices));
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
        memory?.onStreamBatch(train, streamIndices, t, result.logits, epoch === 0);
        if (swapNow) {
          memory.afterStep(replayedInfo(replaySlots, memory.memory.asSplit().labels, streamIndices.length, result.logits, nc), (epoch + s / stepsPerEpoch) / epochs);
        }
        streamSamples += streamIndices.length;
        replaySamples += replaySlots.length;
        steps++;
        this.#options.onStep?.({ task: t, tasks: scenario.tasks.length, step: steps, stepsPerTask: stepsPerEpoch * epochs, loss: result.loss });
      }
    }
    const trainSeconds = (performance.now() - started) / 1000;
    // Committing the task's samples is the background writer's job; waiting for it is not training time.
    await memory?.endTask();
    strategy.afterTask?.(task);
    return { task: t, trainSeconds, streamSamples, replaySamples, steps };
  }

  #gatherLogits(memory: MemoryHierarchy | undefined, slots: Int32Array, nc: number): Float32Array | null {
    if (memory === undefined || slots.length === 0) return null;
    const out = new Float32Array(slots.length * nc);
    for (let k = 0; k < slots.length; k++) {
      const l = memory.memory.logitsOf(slots[k]!);
      if (l !== null) out.set(l, k * nc);
    }
    return out;
  }
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
