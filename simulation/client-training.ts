import * as tf from '@tensorflow/tfjs';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { Rng, permutation } from '../ml/rng.js';
import { Trainer, type LossTerm } from '../ml/trainer.js';
import { getFlatWeights, layoutOf, setFlatWeights } from '../ml/weights.js';
import { trainingFlops, trainingWork } from '../ml/work-count.js';
import type { ClientJob } from './sim-messages.js';

/** What a client process or slot thread holds for its whole life: one model, the shared training split. */
export interface TrainingContext {
  model: tf.LayersModel;
  train: DataSplit;
  featureSize: number;
  numClasses: number;
  scale: number;
  inputShape: [number, number, number];
}

export interface LocalOutcome {
  delta: Float32Array;
  numSamples: number;
  loss: number;
  /** Counted training FLOPs of the round (see `ml/work-count.ts`): what the virtual clock prices. */
  flops: number;
  cl?: { emSize: number; storedSamples: number; swapsApplied: number; replaySamples: number };
}

/**
 * One client's local training, the same code in every mode: start from the
 * global weights, a fresh optimizer, a shuffle seeded by (client, round),
 * `epochs` passes over its rows; `pace()` after every step lets the budget
 * enforcer hold the thread back. Returns the delta (local - global).
 */
export function trainLocal(ctx: TrainingContext, job: ClientJob, global: Float32Array, pace: () => void): LocalOutcome {
  setFlatWeights(ctx.model, global);
  const s = job.train;
  const trainer = new Trainer(ctx.model, {
    featureSize: ctx.featureSize, numClasses: ctx.numClasses, scale: ctx.scale, optimizer: s.optimizer, learningRate: s.learningRate,
  });
  const prox = s.fedproxMu !== undefined && s.fedproxMu > 0 ? proximalTerm(ctx.model, global, s.fedproxMu) : undefined;
  const rng = new Rng(job.seed);
  const work = trainingWork(ctx.model, s.optimizer);
  let flops = 0;
  let lossSum = 0;
  let seen = 0;
  try {
    for (let epoch = 0; epoch < s.epochs; epoch++) {
      const perm = permutation(job.indices.length, rng);
      const order = new Int32Array(perm.length);
      for (let i = 0; i < perm.length; i++) order[i] = job.indices[perm[i]!]!;
      lossSum = 0;
      seen = 0;
      for (let start = 0; start < order.length; start += s.batch) {
        const idx = order.subarray(start, Math.min(order.length, start + s.batch));
        const loss = trainer.stepOn(ctx.train, idx, prox?.term);
        lossSum += loss * idx.length;
        seen += idx.length;
        flops += trainingFlops(work, idx.length, 1);
        pace();
      }
    }
  } finally {
    prox?.dispose();
    trainer.dispose();
  }
  const local = getFlatWeights(ctx.model);
  for (let i = 0; i < local.length; i++) local[i] = local[i]! - global[i]!;
  return { delta: local, numSamples: job.indices.length, loss: seen > 0 ? lossSum / seen : Number.NaN, flops };
}

/** FedProx's mu/2 ||w - w_global||^2 over the trainable weights. */
function proximalTerm(model: tf.LayersModel, global: Float32Array, mu: number): { term: LossTerm; dispose: () => void } {
  const layout = layoutOf(model);
  const pairs: { v: tf.LayerVariable; g: tf.Tensor }[] = [];
  model.weights.forEach((w, i) => {
    if (!w.trainable) return;
    const e = layout.entries[i]!;
    pairs.push({ v: w, g: tf.tensor(global.subarray(e.offset, e.offset + e.size), e.shape, 'float32') });
  });
  return {
    term: () => tf.tidy(() => {
      let sum: tf.Scalar = tf.scalar(0);
      for (const { v, g } of pairs) sum = tf.add(sum, tf.sum(tf.square(tf.sub(v.read(), g)))) as tf.Scalar;
      return tf.mul(sum, mu / 2) as tf.Scalar;
    }),
    dispose: () => {
      for (const p of pairs) p.g.dispose();
    },
  };
}
