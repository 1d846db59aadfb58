import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import { syntheticDataset } from '../../ml/datasets/synthetic.js';
import { planLayers } from '../../ml/fast-step/layer-plan.js';
import { createModel, type ModelKind } from '../../ml/models.js';
import { Trainer, type LossTerm } from '../../ml/trainer.js';
import { getFlatWeights } from '../../ml/weights.js';

const ds = syntheticDataset({ trainCount: 640, testCount: 200 });
const shape = { inputShape: ds.inputShape, numClasses: ds.numClasses };
const trainerOptions = { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale };

interface Run { losses: number[]; weights: Float32Array; logits: Float32Array[] }

/** Trains `steps` steps with the fast step on or off from the same start; returns losses, weights and captured logits. */
function train(kind: ModelKind, fastStep: boolean, optimizer: 'adam' | 'sgd', extra: ((model: tf.LayersModel) => LossTerm) | undefined, steps = 8): Run {
  const model = createModel({ kind, ...shape, seed: 3 });
  const trainer = new Trainer(model, { ...trainerOptions, optimizer, fastStep });
  expect(trainer.stepPath.kind).toBe(fastStep ? 'fast' : 'autograd');
  const term = extra?.(model);
  const losses: number[] = [];
  const logits: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const batch = trainer.batchBuilder.build(ds.train, Int32Array.from({ length: 32 }, (_, i) => s * 32 + i));
    const r = trainer.stepWithLogits(batch.x, batch.y, term, true);
    tf.dispose([batch.x, batch.y]);
    losses.push(r.loss);
    logits.push(r.logits!);
  }
  const weights = getFlatWeights(model);
  trainer.dispose();
  model.dispose();
  return { losses, weights, logits };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** A FedProx-like term: reads the weights (gradient flows to variables) and the logits (gradient flows into backprop). */
const proxAndLogits = (model: tf.LayersModel): LossTerm => {
  const start = model.trainableWeights.map((w) => tf.keep(w.read().clone()));
  return (logits) => tf.tidy(() => {
    let sum = tf.mul(tf.sum(tf.square(logits)), 1e-3) as tf.Scalar;
    model.trainableWeights.forEach((w, i) => {
      sum = tf.add(sum, tf.mul(tf.sum(tf.square(tf.sub(w.read(), start[i]!))), 0.05)) as tf.Scalar;
    });
    return sum;
  });
};

describe('the fast step (wasm) gives tfjs autograd results', () => {
  beforeAll(async () => {
    expect((await initBackend({ backend: 'wasm' })).name).toBe('wasm');
  });

  it.each([
    { kind: 'mlp', optimizer: 'adam', extra: false },
    { kind: 'cnn', optimizer: 'adam', extra: false },
    { kind: 'mlp', optimizer: 'sgd', extra: true },
    { kind: 'cnn', optimizer: 'sgd', extra: true },
    { kind: 'cnn', optimizer: 'adam', extra: true },
  ] as const)('$kind, $optimizer, extra loss term: $extra', ({ kind, optimizer, extra }) => {
    const fast = train(kind, true, optimizer, extra ? proxAndLogits : undefined);
    const auto = train(kind, false, optimizer, extra ? proxAndLogits : undefined);
    for (let s = 0; s < fast.losses.length; s++) {
      expect(Math.abs(fast.losses[s]! - auto.losses[s]!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(fast.logits[s]!, auto.logits[s]!)).toBeLessThan(1e-4);
    }
    // Adam turns rounding noise in near-zero gradients into lr-sized steps; SGD stays within rounding.
    expect(maxAbsDiff(fast.weights, auto.weights)).toBeLessThan(optimizer === 'adam' ? 1e-4 : 1e-6);
  });

  it('an odd-sized chain (valid convolutions, same-padded pools over odd sizes, 4-channel pools, no bias) agrees too', () => {
    const build = () => tf.sequential({
      layers: [
        tf.layers.reshape({ inputShape: [784], targetShape: [28, 28, 1] }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', padding: 'valid', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
        tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, activation: 'relu', padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
        tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      ],
    });
    const runs = [true, false].map((fastStep) => {
      const model = build();
      const trainer = new Trainer(model, { ...trainerOptions, fastStep });
      expect(trainer.stepPath.kind).toBe(fastStep ? 'fast' : 'autograd');
      const losses = Array.from({ length: 5 }, (_, s) => trainer.stepOn(ds.train, Int32Array.from({ length: 24 }, (_, i) => s * 24 + i)));
      const weights = getFlatWeights(model);
      trainer.dispose();
      model.dispose();
      return { losses, weights };
    });
    for (let s = 0; s < 5; s++) expect(Math.abs(runs[0]!.losses[s]! - runs[1]!.losses[s]!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(runs[0]!.weights, runs[1]!.weights)).toBeLessThan(1e-4);
  });

  it('holds no tensors or heap buffers across steps', () => {
    for (const kind of ['mlp', 'cnn'] as const) {
      const model = createModel({ kind, ...shape, seed: 1 });
      const trainer = new Trainer(model, trainerOptions);
      const idx = Int32Array.from({ length: 16 }, (_, i) => i);
      trainer.stepOn(ds.train, idx);
      const backend = tf.backend() as unknown as { numDataIds(): number };
      const tensors = tf.memory().numTensors;
      const ids = backend.numDataIds();
      for (let i = 0; i < 3; i++) trainer.stepOn(ds.train, idx, (logits) => tf.mul(tf.sum(logits), 0) as tf.Scalar);
      expect(tf.memory().numTensors).toBe(tensors);
      expect(backend.numDataIds()).toBe(ids);
      trainer.dispose();
      model.dispose();
    }
  });

  it('models it cannot run by hand keep autograd, with the reason', () => {
    const sigmoid = tf.sequential({ layers: [tf.layers.dense({ inputShape: [784], units: 8, activation: 'sigmoid' }), tf.layers.dense({ units: 10 })] });
    const trainer = new Trainer(sigmoid, trainerOptions);
    expect(trainer.stepPath).toEqual({ kind: 'autograd', reason: 'activation sigmoid is not supported' });
    expect(Number.isFinite(trainer.stepOn(ds.train, [0, 1, 2, 3]))).toBe(true);
    trainer.dispose();
    sigmoid.dispose();
    const off = createModel({ kind: 'mlp', ...shape });
    expect(new Trainer(off, { ...trainerOptions, fastStep: false }).stepPath).toEqual({ kind: 'autograd', reason: 'fastStep: false' });
    off.dispose();
  });

  it('plans the built-in models as chains and skips frozen layers', () => {
    const model = createModel({ kind: 'cnn', ...shape });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const plan = planLayers(model, vars);
    expect(plan.ok && plan.ops.map((op) => op.kind)).toEqual(['reshape', 'conv2d', 'maxpool', 'conv2d', 'maxpool', 'reshape', 'dense', 'dense']);
    model.getLayer('conv1').trainable = false;
    const trainer = new Trainer(model, trainerOptions);
    expect(trainer.stepPath.kind).toBe('fast');
    const conv1 = () => model.getLayer('conv1').getWeights().map((w) => w.dataSync().slice());
    const frozen = conv1();
    const others = model.getLayer('conv2').getWeights()[0]!.dataSync().slice();
    trainer.stepOn(ds.train, Int32Array.from({ length: 16 }, (_, i) => i));
    expect(conv1()).toEqual(frozen);
    expect(model.getLayer('conv2').getWeights()[0]!.dataSync()).not.toEqual(others);
    trainer.dispose();
    model.dispose();
  });
});
