import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import type { Dataset } from '../../ml/datasets/dataset.js';
import { loadDataset } from '../../ml/datasets/load-dataset.js';
import { buildModel, modelInputShape, parseModelSpec, saveModelFile, type ModelShape } from '../../ml/models.js';
import { depthwiseConv2dBackpropFilterConfig } from '../../ml/wasm-kernels/depthwise-conv2d-backprop.js';
import { Trainer } from '../../ml/trainer.js';
import { getFlatWeights, layoutOf, setFlatWeights } from '../../ml/weights.js';
import { countModelWork } from '../../ml/work-count.js';
import { saveUserCnn, userCnn } from './model-fixtures.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MNIST: ModelShape = { inputShape: [28, 28, 1], numClasses: 10 };

let mnist: Dataset;
let cnnFile: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: 1 });
  mnist = await loadDataset('mnist');
  cnnFile = await saveUserCnn(path.join(dir, 'cnn'), { filters: 8, dense: 32 });
});

async function thrown(fn: () => unknown): Promise<{ code: string; details: Record<string, unknown>; message: string }> {
  try {
    await fn();
  } catch (err) {
    return err as { code: string; details: Record<string, unknown>; message: string };
  }
  throw new Error('expected an error');
}

describe('models from tfjs Layers model.json files', () => {
  it('build with flat inputs, logits, the file\'s weights and a layout that carries batch-norm statistics', async () => {
    const model = await buildModel(cnnFile, MNIST, 1);
    expect(model.inputs[0]!.shape).toEqual([null, 784]);
    expect(model.outputs[0]!.shape).toEqual([null, 10]);
    expect(model.layers.map((l) => l.getClassName())).toEqual([
      'Reshape', 'Conv2D', 'BatchNormalization', 'MaxPooling2D', 'DepthwiseConv2D', 'Conv2D', 'AveragePooling2D', 'Flatten', 'Dropout', 'Dense', 'Dense',
    ]);
    // The final softmax became linear: Strata's loss applies softmax itself.
    expect(model.layers.at(-1)!.getConfig()['activation']).toBe('linear');
    const names = layoutOf(model).entries.map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['conv1/kernel', 'bn1/gamma', 'bn1/beta', 'dw2/depthwise_kernel', 'out/bias', 'bn1/moving_mean', 'bn1/moving_variance']));
    // The file's weights are the initial weights, whatever the seed.
    const manifest = JSON.parse(readFileSync(cnnFile, 'utf8')) as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] };
    const bin = readFileSync(path.join(path.dirname(cnnFile), 'weights.bin'));
    const specs = manifest.weightsManifest[0]!.weights;
    const k = specs.findIndex((s) => s.name === 'conv1/kernel');
    const offset = specs.slice(0, k).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
    const fileKernel = new Float32Array(bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + 3 * 3 * 1 * 8 * 4));
    const other = await buildModel(cnnFile, MNIST, 99);
    for (const m of [model, other]) expect(Array.from(m.getLayer('conv1').getWeights()[0]!.dataSync())).toEqual(Array.from(fileKernel));
    // BatchNorm's moving statistics travel (and are averaged) with the weights: a flat vector round-trips them.
    const flat = getFlatWeights(model);
    const mv = layoutOf(model).entries.find((e) => e.name === 'bn1/moving_variance')!;
    flat.fill(0.5, mv.offset, mv.offset + mv.size);
    setFlatWeights(other, flat);
    expect(Array.from(other.getLayer('bn1').getWeights()[3]!.dataSync())).toEqual(new Array(8).fill(0.5));
    model.dispose();
    other.dispose();
  });

  it('without weights in the file, the seed initialises: the same seed gives the same weights in every build', async () => {
    const m = userCnn({ filters: 4, dense: 16 });
    const file = await saveModelFile(m, path.join(dir, 'no-weights'));
    m.dispose();
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete json['weightsManifest'];
    writeFileSync(file, JSON.stringify(json));
    const [a, b, c] = [await buildModel(file, MNIST, 3), await buildModel(file, MNIST, 3), await buildModel(file, MNIST, 4)];
    expect(getFlatWeights(a)).toEqual(getFlatWeights(b));
    expect(getFlatWeights(a)).not.toEqual(getFlatWeights(c));
    for (const m2 of [a, b, c]) m2.dispose();
  });

  it('functional models with an InputLayer, and factories whose model takes images, get flat inputs too', async () => {
    const input = tf.input({ shape: [28, 28, 1], name: 'pixels' });
    const conv = tf.layers.separableConv2d({ name: 'sep', filters: 4, kernelSize: 3, activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv) as tf.SymbolicTensor;
    const out = tf.layers.dense({ name: 'head', units: 10, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
    const functional = tf.model({ inputs: input, outputs: out });
    const file = await saveModelFile(functional, path.join(dir, 'functional'));
    const fromFile = await buildModel(file, MNIST, 1);
    expect(fromFile.inputs[0]!.shape).toEqual([null, 784]);
    expect(modelInputShape(file)).toEqual([28, 28, 1]);
    const x = tf.randomUniform([3, 784]);
    // The same weights, the same logits as the original (before its softmax).
    const want = tf.tidy(() => tf.log(functional.predict(x.reshape([3, 28, 28, 1])) as tf.Tensor));
    const got = tf.tidy(() => tf.logSoftmax(fromFile.predict(x) as tf.Tensor));
    expect(Math.max(...Array.from(tf.sub(want, got).abs().dataSync()))).toBeLessThan(1e-4);
    const fromFactory = await buildModel(() => userCnn({ filters: 4, dense: 16 }), MNIST, 1);
    expect(fromFactory.inputs[0]!.shape).toEqual([null, 784]);
    expect(countModelWork(fromFactory).trainingFlopsPerSample).toBeGreaterThan(0);
    tf.dispose([x, want, got]);
    for (const m2 of [fromFile, fromFactory, functional]) m2.dispose();
  });

  it('trains on wasm without leaking tensors: dropout and batch norm in training mode, inference deterministic, statistics moving', async () => {
    const model = await buildModel(cnnFile, MNIST, 1);
    const trainer = new Trainer(model, { featureSize: 784, numClasses: 10, scale: mnist.scale });
    expect(trainer.stepPath.kind).toBe('autograd');
    const bn = model.getLayer('bn1');
    const statsBefore = Array.from(bn.getWeights()[2]!.dataSync());
    const idx = (s: number) => Int32Array.from({ length: 32 }, (_, i) => s * 32 + i);
    trainer.stepOn(mnist.train, idx(0));
    const tensors = tf.memory().numTensors;
    for (let s = 1; s < 4; s++) trainer.stepOn(mnist.train, idx(s));
    expect(tf.memory().numTensors).toBe(tensors);
    expect(Array.from(bn.getWeights()[2]!.dataSync())).not.toEqual(statsBefore);
    // Inference: dropout off and batch norm on its moving statistics, so two passes agree exactly.
    const a = trainer.logits(mnist.test, idx(0));
    const b = trainer.logits(mnist.test, idx(0));
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    // Training mode differs (dropout, batch statistics).
    const batch = trainer.batchBuilder.build(mnist.test, idx(0));
    const t = tf.tidy(() => model.apply(batch.x, { training: true }) as tf.Tensor);
    expect(Array.from(t.dataSync())).not.toEqual(Array.from(a.dataSync()));
    tf.dispose([a, b, t, batch.x, batch.y]);
    trainer.dispose();
    model.dispose();
  });

  it('a model.json of Dense, Conv2D, MaxPooling2D and Flatten layers trains on Strata\'s fast step', async () => {
    const plain = tf.sequential({
      layers: [
        tf.layers.conv2d({ name: 'c1', inputShape: [28, 28, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.maxPooling2d({ name: 'p1', poolSize: 2 }),
        tf.layers.flatten({ name: 'f' }),
        tf.layers.dense({ name: 'o', units: 10, activation: 'softmax' }),
      ],
    });
    const file = await saveModelFile(plain, path.join(dir, 'plain'));
    plain.dispose();
    const model = await buildModel(file, MNIST, 1);
    const trainer = new Trainer(model, { featureSize: 784, numClasses: 10, scale: mnist.scale });
    expect(trainer.stepPath).toEqual({ kind: 'fast', threads: 1 });
    expect(Number.isFinite(trainer.stepOn(mnist.train, Int32Array.from({ length: 16 }, (_, i) => i)))).toBe(true);
    trainer.dispose();
    model.dispose();
  });

  it('learns MNIST (short run: 3,000 samples, accuracy well above chance)', async () => {
    const model = await buildModel(cnnFile, MNIST, 1);
    const trainer = new Trainer(model, { featureSize: 784, numClasses: 10, scale: mnist.scale, learningRate: 0.003 });
    const sub = { features: mnist.train.features.subarray(0, 3000 * 784), labels: mnist.train.labels.subarray(0, 3000), count: 3000 };
    trainer.fit(sub, { epochs: 1, batchSize: 32 });
    const r = trainer.evaluate(mnist.test, { indices: Int32Array.from({ length: 1000 }, (_, i) => i) });
    expect(r.accuracy).toBeGreaterThan(0.8);
    trainer.dispose();
    model.dispose();
  });

  it('counts the work of every layer users bring (device time and energy are priced from it)', async () => {
    const model = await buildModel(cnnFile, MNIST, 1);
    const work = countModelWork(model);
    const by = Object.fromEntries(work.layers.map((l) => [l.name, l]));
    for (const name of ['conv1', 'bn1', 'pool1', 'dw2', 'pw2', 'pool2', 'fc', 'out']) expect(by[name]!.forwardFlops, name).toBeGreaterThan(0);
    // Depthwise 3x3 on 14x14x8, ReLU: (2*9 + bias 1 + relu 1) per output element.
    expect(by['dw2']!.forwardFlops).toBe(14 * 14 * 8 * 20);
    // Dropout is free at inference and costs a mask in training; batch norm costs more in training.
    expect(by['drop']!.forwardFlops).toBe(0);
    expect(by['drop']!.trainingFlops).toBeGreaterThan(0);
    expect(by['bn1']!.trainingFlops).toBeGreaterThan(3 * by['bn1']!.forwardFlops);
    model.dispose();
  });
});

describe('model errors are coded and name what is wrong', () => {
  it('a model that does not fit the data set: STRATA_ERR_MODEL_SHAPE', async () => {
    expect(await thrown(() => buildModel(cnnFile, { inputShape: [32, 32, 3], numClasses: 10 }, 1))).toMatchObject({
      code: 'STRATA_ERR_MODEL_SHAPE', details: { expected: [32, 32, 3], actual: [28, 28, 1] },
    });
    expect(await thrown(() => buildModel(cnnFile, { inputShape: [28, 28, 1], numClasses: 5 }, 1))).toMatchObject({
      code: 'STRATA_ERR_MODEL_SHAPE', details: { part: 'output', expected: [null, 5], actual: [null, 10] },
    });
  });

  it('unreadable files: STRATA_ERR_MODEL_FILE; unknown specs: BAD_OPTION (library) or BAD_FLAG (CLI)', async () => {
    const junk = path.join(dir, 'junk.json');
    writeFileSync(junk, '{"not": "a model"}');
    expect(await thrown(() => buildModel(junk, MNIST, 1))).toMatchObject({ code: 'STRATA_ERR_MODEL_FILE', details: { file: junk } });
    const m = userCnn({ filters: 2, dense: 4 });
    const file = await saveModelFile(m, path.join(dir, 'lost-weights'));
    m.dispose();
    rmSync(path.join(dir, 'lost-weights', 'weights.bin'));
    expect(await thrown(() => buildModel(file, MNIST, 1))).toMatchObject({ code: 'STRATA_ERR_MODEL_FILE', details: { weightFile: path.join(dir, 'lost-weights', 'weights.bin') } });
    expect(() => parseModelSpec('resnet')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option: 'model' }) }));
    expect(() => parseModelSpec('./missing/model.json', '--model')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG', details: expect.objectContaining({ flag: '--model' }) }));
    expect(parseModelSpec(path.dirname(cnnFile))).toMatchObject({ kind: 'file', path: cnnFile });
  });

  it('a layer that needs a kernel the backend lacks fails at load, naming the layer and the kernel', async () => {
    // Without Strata's depthwise filter gradient, the depthwise layer cannot train on wasm.
    tf.unregisterKernel(depthwiseConv2dBackpropFilterConfig.kernelName, 'wasm');
    try {
      expect(await thrown(() => buildModel(cnnFile, MNIST, 1))).toMatchObject({
        code: 'STRATA_ERR_MODEL_UNSUPPORTED', details: { layer: 'dw2', className: 'DepthwiseConv2D', kernel: 'DepthwiseConv2dNativeBackpropFilter', backend: 'wasm' },
      });
    } finally {
      tf.registerKernel(depthwiseConv2dBackpropFilterConfig);
    }
    // tfjs defines no gradient for ThresholdedReLU's comparison: caught at load too, not mid-training.
    const m = tf.sequential({ layers: [tf.layers.dense({ name: 'd', inputShape: [784], units: 8 }), tf.layers.thresholdedReLU({ name: 'thr' }), tf.layers.dense({ name: 'o', units: 10 })] });
    const file = await saveModelFile(m, path.join(dir, 'thresholded'));
    m.dispose();
    const err = await thrown(() => buildModel(file, MNIST, 1));
    expect(err).toMatchObject({ code: 'STRATA_ERR_MODEL_UNSUPPORTED', details: { layer: 'thr', className: 'ThresholdedReLU', kernel: 'Greater gradient' } });
    expect(err.message.split('\n')).toHaveLength(1);
  });
});
