import type * as tf from '@tensorflow/tfjs';
import { BatchBuilder } from './batches.js';
import type { Dataset } from './datasets/dataset.js';
import { evaluateModel } from './trainer.js';
import { setFlatWeights } from './weights.js';

/**
 * Scores flat weight vectors on a data set's test split (the first
 * `samples`, default all) with `model` (whose layout they must have): what
 * a coordinator's server-side evaluation needs (`ServerEvaluation`).
 */
export function testSetEvaluator(model: tf.LayersModel, data: Dataset, samples?: number): (weights: Float32Array) => { accuracy: number; loss: number } {
  const batches = new BatchBuilder(data.featureSize, data.numClasses, data.scale);
  const n = Math.min(data.test.count, samples ?? data.test.count);
  const indices = Int32Array.from({ length: n }, (_, i) => i);
  return (weights) => {
    setFlatWeights(model, weights);
    const r = evaluateModel(model, data.test, batches, { indices });
    return { accuracy: r.accuracy, loss: r.loss };
  };
}
