import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../common/strata-error.js';
import { dataParallelHelpers } from './backend.js';
import { BatchBuilder } from './batches.js';
import { DataParallelStep } from './data-parallel/data-parallel-step.js';
import { planSpec } from './data-parallel/plan-spec.js';
import type { DataSplit } from './datasets/dataset.js';
import { FastStep } from './fast-step/fast-step.js';
import { planLayers } from './fast-step/layer-plan.js';
import { WasmHeap } from './fast-step/wasm-heap.js';
import { HeapAdam, HeapSgd, heapBackendActive, type HeapOptimizer } from './heap-adam.js';
import { Rng, permutation } from './rng.js';

export type OptimizerKind = 'adam' | 'sgd';

export interface TrainerOptions {
  /** Default 0.001 (adam) / 0.05 (sgd). */
  learningRate?: number;
  /** Default `adam`. */
  optimizer?: OptimizerKind;
  /**
   * Default true: on wasm, run Adam as one fused pass over the heap
   * (`HeapAdam`); false keeps tfjs's kernel-per-op optimizer (and so
   * tfjs's autograd: the fast step updates on the heap).
   */
  fusedOptimizer?: boolean;
  /**
   * Default true: on wasm, models that are a chain of Dense, Conv2D
   * (linear or ReLU), MaxPooling2D, Flatten and Reshape layers train with
   * `FastStep` (forward and backward by hand on the heap, fused kernels, no
   * autograd tape); false, or any other model, uses tfjs's autograd.
   */
  fastStep?: boolean;
  featureSize: number;
  numClasses: number;
  /** Multiplier from stored sample values to inputs (1/255 for bytes). */
  scale: number;
}

export interface EpochOptions {
  epochs: number;
  batchSize: number;
  /** Seeds the shuffle; default 1. */
  seed?: number;
  /** Default true. */
  shuffle?: boolean;
  /** Called after every step with the samples done so far. */
  onStep?: (progress: { epoch: number; step: number; stepsPerEpoch: number; samples: number; loss: number }) => void;
}

export interface FitResult {
  samples: number;
  steps: number;
  seconds: number;
  samplesPerSecond: number;
  /** Mean loss of the last epoch. */
  loss: number;
}

export interface EvalResult {
  accuracy: number;
  loss: number;
  count: number;
}

/**
 * How the trainer computes a step: by hand (`fast`, on `threads` threads:
 * more than one when the backend runs data-parallel helpers) or with
 * tfjs's autograd, and why.
 */
export type StepPath = { kind: 'fast'; threads: number } | { kind: 'autograd'; reason: string };

/** Extra loss terms added to the cross-entropy (DER++, FedProx, ...). */
export type LossTerm = (logits: tf.Tensor2D, batch: { x: tf.Tensor2D; y: tf.Tensor2D }) => tf.Scalar;

/**
 * Trains a logits-output model on in-memory batches with its own loop:
 * one `optimizer.minimize` per step inside `tf.tidy`, no per-batch
 * callbacks or history objects, so the step is the model's arithmetic.
 */
export class Trainer {
  readonly model: tf.LayersModel;
  readonly #optimizer: tf.Optimizer;
  readonly #heapAdam: HeapAdam | undefined;
  readonly #fast: { step: FastStep; parallel: DataParallelStep | undefined; optimizer: HeapOptimizer } | undefined;
  readonly #batches: BatchBuilder;
  /** Which way steps run on this model and backend. */
  readonly stepPath: StepPath;
  readonly #vars: tf.Variable[];
  readonly #options: Readonly<Required<TrainerOptions>>;

  constructor(model: tf.LayersModel, options: TrainerOptions) {
    const optimizer = options.optimizer ?? 'adam';
    const learningRate = options.learningRate ?? (optimizer === 'adam' ? 0.001 : 0.05);
    if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `learningRate must be a positive number, got ${learningRate}`, { option: 'learningRate' });
    }
    this.#options = Object.freeze({ fusedOptimizer: true, fastStep: true, ...options, optimizer, learningRate });
    this.model = model;
    this.#optimizer = optimizer === 'adam' ? tf.train.adam(learningRate) : tf.train.sgd(learningRate);
    this.#batches = new BatchBuilder(options.featureSize, options.numClasses, options.scale);
    this.#vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.#heapAdam = optimizer === 'adam' && this.#options.fusedOptimizer && heapBackendActive()
      ? new HeapAdam(this.#vars, { learningRate }) : undefined;
    const { fast, path } = this.#planFastStep();
    this.#fast = fast;
    this.stepPath = path;
  }

  #planFastStep(): { fast: { step: FastStep; parallel: DataParallelStep | undefined; optimizer: HeapOptimizer } | undefined; path: StepPath } {
    const o = this.#options;
    if (!o.fastStep) return { fast: undefined, path: { kind: 'autograd', reason: 'fastStep: false' } };
    if (!heapBackendActive()) return { fast: undefined, path: { kind: 'autograd', reason: `backend ${tf.getBackend()} (the fast step runs on wasm)` } };
    if (!o.fusedOptimizer) return { fast: undefined, path: { kind: 'autograd', reason: 'fusedOptimizer: false' } };
    const plan = planLayers(this.model, this.#vars);
    if (!plan.ok) return { fast: undefined, path: { kind: 'autograd', reason: plan.reason } };
    if (plan.outputSize !== o.numClasses || plan.inputSize !== o.featureSize) {
      return { fast: undefined, path: { kind: 'autograd', reason: 'model shape differs from the data set' } };
    }
    const optimizer = this.#heapAdam ?? new HeapSgd(this.#vars, o.learningRate);
    const heap = new WasmHeap(tf.backend());
    const step = new FastStep(heap, plan.ops, this.#vars, o.numClasses);
    const helpers = dataParallelHelpers();
    const spec = helpers === undefined ? undefined : planSpec(plan.ops, this.#vars, plan.inputSize, o.numClasses);
    const parallel = helpers !== undefined && spec?.ok === true ? new DataParallelStep(helpers, heap, step, spec.spec, spec.refs) : undefined;
    return { fast: { step, parallel, optimizer }, path: { kind: 'fast', threads: parallel?.threads ?? 1 } };
  }

  get batchBuilder(): BatchBuilder {
    return this.#batches;
  }

  /** One optimisation step on a ready batch; returns the loss. */
  step(x: tf.Tensor2D, y: tf.Tensor2D, extra?: LossTerm): number {
    return this.stepWithLogits(x, y, extra, false).loss;
  }

  /**
   * One step that can also hand back the batch's logits from the forward
   * pass (row-major, batch x classes): continual-learning methods and swap
   * policies use them (DER++ records them; CarM's hybrid policy reads
   * correctness and entropy) without a second forward pass.
   */
  stepWithLogits(x: tf.Tensor2D, y: tf.Tensor2D, extra: LossTerm | undefined, captureLogits: boolean): { loss: number; logits: Float32Array | null } {
    const fast = this.#fast;
    if (fast !== undefined) {
      // Extra loss terms read the whole batch's logits: those steps run on the main thread alone.
      if (fast.parallel !== undefined && extra === undefined) return fast.parallel.run(x, y, captureLogits, fast.optimizer);
      return fast.step.run(x, y, extra, captureLogits, (grads) => fast.optimizer.apply(grads));
    }
    let kept: tf.Tensor | null = null;
    const lossFn = (): tf.Scalar => {
      const logits = this.model.apply(x, { training: true }) as tf.Tensor2D;
      if (captureLogits) kept = tf.keep(logits);
      const ce = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      return extra === undefined ? ce : tf.add(ce, extra(logits, { x, y })) as tf.Scalar;
    };
    let loss: number;
    if (this.#heapAdam !== undefined) {
      loss = this.#heapAdam.minimize(lossFn);
    } else {
      const cost = this.#optimizer.minimize(lossFn, true, this.#vars);
      loss = cost === null ? Number.NaN : cost.dataSync()[0]!;
      cost?.dispose();
    }
    let logits: Float32Array | null = null;
    if (kept !== null) {
      const t = kept as tf.Tensor;
      logits = Float32Array.from(t.dataSync() as Float32Array);
      t.dispose();
    }
    return { loss, logits };
  }

  /** One step on rows `indices` of `split`. */
  stepOn(split: DataSplit, indices: ArrayLike<number>, extra?: LossTerm): number {
    const fast = this.#fast;
    // Several threads build their own rows' floats from the split's bytes where they can.
    const rows = extra === undefined ? fast?.parallel?.runRows(split, indices, this.#options.scale, fast.optimizer) : undefined;
    if (rows !== undefined) return rows.loss;
    const batch = this.#batches.build(split, indices);
    try {
      return this.step(batch.x, batch.y, extra);
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
  }

  fit(split: DataSplit, options: EpochOptions): FitResult {
    const { epochs, batchSize } = options;
    if (!Number.isInteger(epochs) || epochs < 1) throw new StrataError('STRATA_ERR_BAD_OPTION', `epochs must be a positive integer, got ${epochs}`, { option: 'epochs' });
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new StrataError('STRATA_ERR_BAD_OPTION', `batchSize must be a positive integer, got ${batchSize}`, { option: 'batchSize' });
    const rng = new Rng(options.seed ?? 1);
    const stepsPerEpoch = Math.ceil(split.count / batchSize);
    const started = performance.now();
    let samples = 0;
    let steps = 0;
    let lastLoss = Number.NaN;
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = options.shuffle === false ? Int32Array.from({ length: split.count }, (_, i) => i) : permutation(split.count, rng);
      let lossSum = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.subarray(s * batchSize, Math.min(split.count, (s + 1) * batchSize));
        const loss = this.stepOn(split, idx);
        lossSum += loss * idx.length;
        samples += idx.length;
        steps++;
        options.onStep?.({ epoch, step: s, stepsPerEpoch, samples, loss });
      }
      lastLoss = lossSum / split.count;
    }
    const seconds = (performance.now() - started) / 1000;
    return { samples, steps, seconds, samplesPerSecond: samples / seconds, loss: lastLoss };
  }

  /** Logits for rows `indices` of `split` (caller disposes). */
  logits(split: DataSplit, indices: ArrayLike<number>): tf.Tensor2D {
    const batch = this.#batches.build(split, indices);
    try {
      return tf.tidy(() => this.model.apply(batch.x, { training: false }) as tf.Tensor2D);
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
  }

  evaluate(split: DataSplit, options: { batchSize?: number; indices?: ArrayLike<number> } = {}): EvalResult {
    return evaluateModel(this.model, split, this.#batches, options);
  }

  /** Frees the optimizer's state (on wasm, Adam's moments live on the heap). */
  dispose(): void {
    this.#fast?.parallel?.dispose();
    this.#optimizer.dispose();
    this.#heapAdam?.dispose();
  }
}

/** Accuracy and mean loss of a logits model over (a subset of) a split. */
export function evaluateModel(
  model: tf.LayersModel, split: DataSplit, batches: BatchBuilder,
  options: { batchSize?: number; indices?: ArrayLike<number> } = {},
): EvalResult {
  const indices = options.indices ?? Int32Array.from({ length: split.count }, (_, i) => i);
  const bs = options.batchSize ?? 1000;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < indices.length; start += bs) {
    const end = Math.min(indices.length, start + bs);
    const batch = batches.build(split, indices, start, end);
    const [c, l] = tf.tidy(() => {
      const logits = model.apply(batch.x, { training: false }) as tf.Tensor2D;
      const hits = tf.equal(tf.argMax(logits, 1), tf.argMax(batch.y, 1)).sum();
      const loss = tf.losses.softmaxCrossEntropy(batch.y, logits, undefined, 0, tf.Reduction.SUM);
      return [hits.dataSync()[0]!, loss.dataSync()[0]!];
    });
    batch.x.dispose();
    batch.y.dispose();
    correct += c;
    lossSum += l;
  }
  const count = indices.length;
  return { accuracy: count === 0 ? 0 : correct / count, loss: count === 0 ? 0 : lossSum / count, count };
}
