import * as tf from '@tensorflow/tfjs';
import type { ModelKind, ModelShape } from './model-spec.js';

export { isModelKind, parseModelKind, MODEL_KINDS, type ModelKind, type ModelShape } from './model-spec.js';

export interface ModelOptions extends ModelShape {
  kind: ModelKind;
  /** Seeds the weight initialisers; default 1. */
  seed?: number;
}

/**
 * The models, defined once. Both output logits (no softmax): the loss and
 * DER++'s logit replay want them, and `argmax` predicts the same class.
 * Layer names are fixed so the flat weight layout is identical in every
 * process (tfjs's auto-names count up per process).
 */
export function createModel(options: ModelOptions): tf.LayersModel {
  const seed = options.seed ?? 1;
  const [h, w, c] = options.inputShape;
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed * 100 + i });
  const zeros = () => tf.initializers.zeros();
  if (options.kind === 'mlp') {
    return tf.sequential({
      name: 'mlp',
      layers: [
        tf.layers.dense({ name: 'fc1', inputShape: [h * w * c], units: 256, activation: 'relu', kernelInitializer: init(1), biasInitializer: zeros() }),
        tf.layers.dense({ name: 'fc2', units: 128, activation: 'relu', kernelInitializer: init(2), biasInitializer: zeros() }),
        tf.layers.dense({ name: 'logits', units: options.numClasses, kernelInitializer: init(3), biasInitializer: zeros() }),
      ],
    });
  }
  return tf.sequential({
    name: 'cnn',
    layers: [
      tf.layers.reshape({ name: 'image', inputShape: [h * w * c], targetShape: [h, w, c] }),
      tf.layers.conv2d({ name: 'conv1', filters: 32, kernelSize: 3, activation: 'relu', padding: 'same', kernelInitializer: init(1), biasInitializer: zeros() }),
      tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }),
      tf.layers.conv2d({ name: 'conv2', filters: 64, kernelSize: 3, activation: 'relu', padding: 'same', kernelInitializer: init(2), biasInitializer: zeros() }),
      tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ name: 'fc1', units: 128, activation: 'relu', kernelInitializer: init(3), biasInitializer: zeros() }),
      tf.layers.dense({ name: 'logits', units: options.numClasses, kernelInitializer: init(4), biasInitializer: zeros() }),
    ],
  });
}

/** Number of scalars in the model's weights (trainable and not: batch-norm statistics count). */
export function parameterCount(model: tf.LayersModel): number {
  return model.weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/** The factory of a built-in model (`mlp`, `cnn`), for APIs that take a `ModelFactory`. */
export function builtinModel(kind: ModelKind): (shape: ModelShape, seed: number) => tf.LayersModel {
  return (shape, seed) => createModel({ kind, ...shape, seed });
}
