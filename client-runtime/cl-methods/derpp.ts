import * as tf from '@tensorflow/tfjs';
import type { ClMethod } from './cl-method.js';

export interface DerppOptions {
  replay: number;
  /** Weight of the logit-matching (MSE) term on replayed samples; default 0.3. */
  alpha?: number;
}

/**
 * DER++ (Buzzega et al. 2020): replayed samples carry the logits the model
 * produced when they were seen; the loss adds alpha x MSE between current
 * and stored logits, on top of the cross-entropy on their labels (the beta
 * term, here with beta = 1 and the same replayed samples for both terms).
 */
export function derpp(options: DerppOptions): ClMethod {
  const alpha = options.alpha ?? 0.3;
  return {
    name: 'derpp',
    usesMemory: true,
    storesLogits: true,
    replayCount: (_stream, size) => Math.min(options.replay, size),
    lossTerm(batch, ctx) {
      const stored = ctx.replayLogits;
      const r = batch.replaySlots.length;
      if (stored === null || r === 0) return undefined;
      const s = batch.streamIndices.length;
      return (logits) => {
        const classes = logits.shape[1];
        const current = tf.slice(logits, [s, 0], [r, classes]);
        const target = tf.tensor2d(stored, [r, classes]);
        return tf.mul(alpha, tf.losses.meanSquaredError(target, current)) as tf.Scalar;
      };
    },
  };
}
