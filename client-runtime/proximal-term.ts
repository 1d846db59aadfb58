import * as tf from '@tensorflow/tfjs';
import type { LossTerm } from '../ml/trainer.js';
import { layoutOf } from '../ml/weights.js';
import type { ClMethod } from './cl-methods/cl-method.js';

/**
 * FedProx's proximal term (Li et al. 2020): `mu/2 x ||w - w_global||^2` over
 * the trainable weights, anchored at the global model the round started from.
 * `dispose()` frees the anchor tensors.
 */
export function proximalTerm(model: tf.LayersModel, global: Float32Array, mu: number): { term: LossTerm; dispose(): void } {
  const layout = layoutOf(model);
  const pairs: { variable: tf.Variable; anchor: tf.Tensor }[] = [];
  model.weights.forEach((w, i) => {
    if (!w.trainable) return;
    const e = layout.entries[i]!;
    pairs.push({ variable: w.read() as tf.Variable, anchor: tf.tensor(global.subarray(e.offset, e.offset + e.size), e.shape, 'float32') });
  });
  const term: LossTerm = () => {
    let sum: tf.Scalar = tf.scalar(0);
    for (const { variable, anchor } of pairs) sum = tf.add(sum, tf.sum(tf.square(tf.sub(variable, anchor))));
    return tf.mul(sum, mu / 2);
  };
  return { term, dispose: () => { for (const p of pairs) p.anchor.dispose(); } };
}

/** `inner` with `extra` added to every step's loss (delegating, so stateful strategies keep their state). */
export function withExtraLoss(inner: ClMethod, extra: LossTerm): ClMethod {
  return {
    name: inner.name,
    usesMemory: inner.usesMemory,
    storesLogits: inner.storesLogits,
    beforeTask: (task) => inner.beforeTask?.(task),
    replayCount: (stream, size) => inner.replayCount(stream, size),
    lossTerm: (batch, ctx) => {
      const own = inner.lossTerm?.(batch, ctx);
      if (own === undefined) return extra;
      return (logits, b) => tf.add(own(logits, b), extra(logits, b));
    },
    afterStep: (batch, ctx) => inner.afterStep?.(batch, ctx),
    afterTask: (task) => inner.afterTask?.(task),
  };
}
