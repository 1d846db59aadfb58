import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import { syntheticDataset } from '../../ml/datasets/synthetic.js';
import { createModel, parameterCount } from '../../ml/models.js';
import { Trainer } from '../../ml/trainer.js';
import { getFlatWeights, layoutOf, setFlatWeights } from '../../ml/weights.js';

const ds = syntheticDataset({ trainCount: 1200, testCount: 400 });
const shape = { inputShape: ds.inputShape, numClasses: ds.numClasses };
const trainerOptions = { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale };

describe('models, flat weights and the trainer (wasm)', () => {
  beforeAll(async () => {
    expect((await initBackend({ backend: 'wasm' })).name).toBe('wasm');
  });

  it('the MLP is 784-256-128-10 and the layout is the same in every model', () => {
    const a = createModel({ kind: 'mlp', ...shape, seed: 1 });
    const b = createModel({ kind: 'mlp', ...shape, seed: 2 });
    expect(parameterCount(a)).toBe(784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    expect(layoutOf(a)).toEqual(layoutOf(b));
    expect(layoutOf(a).entries.map((e) => e.name)).toEqual(['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias', 'logits/kernel', 'logits/bias']);
    a.dispose();
    b.dispose();
  });

  it('flat weights round-trip and a wrong length is a coded error', () => {
    const a = createModel({ kind: 'cnn', ...shape, seed: 1 });
    const b = createModel({ kind: 'cnn', ...shape, seed: 9 });
    const wa = getFlatWeights(a);
    expect(getFlatWeights(b)).not.toEqual(wa);
    setFlatWeights(b, wa);
    expect(getFlatWeights(b)).toEqual(wa);
    expect(() => setFlatWeights(b, wa.subarray(1))).toThrow(expect.objectContaining({ code: 'STRATA_ERR_LAYOUT_MISMATCH' }));
    a.dispose();
    b.dispose();
  });

  it('same seed, same result; training learns the synthetic set', () => {
    const run = () => {
      const model = createModel({ kind: 'mlp', ...shape, seed: 5 });
      const trainer = new Trainer(model, trainerOptions);
      trainer.fit(ds.train, { epochs: 2, batchSize: 32, seed: 11 });
      const acc = trainer.evaluate(ds.test).accuracy;
      const w = getFlatWeights(model);
      trainer.dispose();
      model.dispose();
      return { acc, w };
    };
    const first = run();
    const second = run();
    expect(second.w).toEqual(first.w);
    expect(first.acc).toBeGreaterThan(0.9);
  });

  it('holds no tensors across steps (MLP and CNN)', () => {
    for (const kind of ['mlp', 'cnn'] as const) {
      const model = createModel({ kind, ...shape, seed: 1 });
      const trainer = new Trainer(model, trainerOptions);
      const idx = Int32Array.from({ length: 16 }, (_, i) => i);
      trainer.stepOn(ds.train, idx); // warm-up: optimizer state and caches appear here
      const after1 = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) trainer.stepOn(ds.train, idx);
      expect(tf.memory().numTensors).toBe(after1);
      trainer.evaluate(ds.test);
      expect(tf.memory().numTensors).toBe(after1);
      trainer.dispose();
      model.dispose();
    }
  });

  it("the fused Adam gives tfjs's Adam results within float tolerance", () => {
    const losses: number[][] = [];
    const weights: Float32Array[] = [];
    for (const fusedOptimizer of [true, false]) {
      const model = createModel({ kind: 'mlp', ...shape, seed: 3 });
      const trainer = new Trainer(model, { ...trainerOptions, fusedOptimizer });
      const l: number[] = [];
      for (let s = 0; s < 20; s++) l.push(trainer.stepOn(ds.train, Int32Array.from({ length: 32 }, (_, i) => s * 32 + i)));
      losses.push(l);
      weights.push(getFlatWeights(model));
      trainer.dispose();
      model.dispose();
    }
    for (let s = 0; s < 20; s++) expect(losses[0]![s]).toBeCloseTo(losses[1]![s]!, 4);
    let maxDiff = 0;
    for (let i = 0; i < weights[0]!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(weights[0]![i]! - weights[1]![i]!));
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('the CNN trains on wasm (needs the registered Conv2DBackpropFilter)', () => {
    const model = createModel({ kind: 'cnn', ...shape, seed: 2 });
    const trainer = new Trainer(model, trainerOptions);
    const small = { features: ds.train.features.subarray(0, 400 * 784), labels: ds.train.labels.subarray(0, 400), count: 400 };
    const before = trainer.evaluate(ds.test).loss;
    trainer.fit(small, { epochs: 1, batchSize: 32 });
    const after = trainer.evaluate(ds.test);
    expect(after.loss).toBeLessThan(before);
    expect(after.accuracy).toBeGreaterThan(0.5);
    trainer.dispose();
    model.dispose();
  });

  it('bad trainer options are coded errors', () => {
    const model = createModel({ kind: 'mlp', ...shape });
    expect(() => new Trainer(model, { ...trainerOptions, learningRate: -1 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
    const trainer = new Trainer(model, trainerOptions);
    expect(() => trainer.fit(ds.train, { epochs: 0, batchSize: 8 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
    trainer.dispose();
    model.dispose();
  });
});
