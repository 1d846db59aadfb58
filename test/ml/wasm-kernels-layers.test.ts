import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import { Rng } from '../../ml/rng.js';
import { random, relativeError, runOn } from './kernel-check.js';

const depthwiseCases: { x: [number, number, number, number]; k: [number, number]; m: number; stride: number; pad: 'same' | 'valid' }[] = [
  { x: [2, 8, 8, 3], k: [3, 3], m: 1, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: [3, 3], m: 2, stride: 1, pad: 'valid' },
  { x: [3, 9, 7, 4], k: [3, 3], m: 1, stride: 2, pad: 'same' },
  { x: [3, 9, 7, 2], k: [3, 2], m: 3, stride: 2, pad: 'valid' },
  { x: [1, 10, 11, 5], k: [5, 5], m: 1, stride: 1, pad: 'same' },
  { x: [4, 14, 14, 16], k: [3, 3], m: 1, stride: 1, pad: 'same' },
  { x: [2, 11, 9, 6], k: [2, 4], m: 2, stride: 2, pad: 'same' },
];

function depthwiseOutShape(c: (typeof depthwiseCases)[number]): number[] {
  return tf.backend_util.computeConv2DInfo(c.x, [c.k[0], c.k[1], c.x[3], c.m], c.stride, 1, c.pad, undefined, true).outShape;
}

describe('Strata wasm kernels for the layers users bring (depthwise gradients, Tile; stock AvgPoolGrad) match the cpu backend', () => {
  beforeAll(async () => {
    const info = await initBackend({ backend: 'wasm', threads: 1 });
    expect(info.kernels).toBe('strata');
    await import('@tensorflow/tfjs-backend-cpu');
  });

  it.each(depthwiseCases)('DepthwiseConv2dNativeBackpropFilter x=$x k=$k m=$m stride=$stride $pad', async (c) => {
    const rng = new Rng(c.x.reduce((a, b) => a * 31 + b, c.stride + c.m));
    const x = random(c.x, rng);
    const dy = random(depthwiseOutShape(c), rng);
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1, filterShape: [c.k[0], c.k[1], c.x[3], c.m] };
    const wasm = await runOn('wasm', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, attrs);
    const cpu = await runOn('cpu', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  it.each(depthwiseCases)('DepthwiseConv2dNativeBackpropInput x=$x k=$k m=$m stride=$stride $pad', async (c) => {
    const rng = new Rng(c.x.reduce((a, b) => a * 17 + b, c.stride + c.m));
    const filter = random([c.k[0], c.k[1], c.x[3], c.m], rng);
    const dy = random(depthwiseOutShape(c), rng);
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1, inputShape: c.x };
    const wasm = await runOn('wasm', 'DepthwiseConv2dNativeBackpropInput', { dy, filter }, attrs);
    const cpu = await runOn('cpu', 'DepthwiseConv2dNativeBackpropInput', { dy, filter }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  it.each([
    { x: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' },
    { x: [2, 7, 9, 4], size: 3, stride: 2, pad: 'same' },
    { x: [1, 6, 6, 2], size: 3, stride: 1, pad: 'valid' },
  ] as const)('AvgPoolGrad (tfjs\'s own wasm kernel) x=$x size=$size stride=$stride $pad', async (c) => {
    const rng = new Rng(c.size * 11 + c.stride);
    const input = random([...c.x], rng);
    const info = tf.backend_util.computePool2DInfo([...c.x] as [number, number, number, number], c.size, c.stride, 1, c.pad);
    const dy = random(info.outShape, rng);
    const attrs = { filterSize: c.size, strides: c.stride, pad: c.pad };
    const wasm = await runOn('wasm', 'AvgPoolGrad', { dy, input }, attrs);
    const cpu = await runOn('cpu', 'AvgPoolGrad', { dy, input }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  it.each([
    { x: [1, 1, 1, 5], reps: [4, 3, 2, 1] },
    { x: [2, 3, 4], reps: [3, 1, 2] },
    { x: [7], reps: [5] },
    { x: [2, 1, 3, 2], reps: [1, 4, 1, 3] },
    { x: [3, 2], reps: [1, 1] },
  ])('Tile x=$x reps=$reps', async (c) => {
    const rng = new Rng(c.x.length * 13 + c.reps[0]!);
    const x = random(c.x, rng);
    const wasm = await runOn('wasm', 'Tile', { x }, { reps: c.reps });
    const cpu = await runOn('cpu', 'Tile', { x }, { reps: c.reps });
    expect(wasm).toEqual(cpu);
  });

  it('Tile of int32 tensors', async () => {
    await tf.setBackend('wasm');
    const t = tf.tile(tf.tensor([[1, 2], [3, 4]], [2, 2], 'int32'), [2, 3]);
    expect(t.dtype).toBe('int32');
    expect(t.arraySync()).toEqual([[1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4], [1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4]]);
    t.dispose();
  });

  /** A layer's gradients (weights and input) on one backend, from the same weights and data. */
  async function layerGrads(backend: string, make: () => tf.layers.Layer, inputShape: number[], seed: number): Promise<Float32Array[]> {
    await tf.setBackend(backend);
    const rng = new Rng(seed);
    const layer = make();
    const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: inputShape.slice(1) }), layer] });
    for (const w of model.weights) w.write(tf.tensor(random(w.shape as number[], rng).data, w.shape as number[]));
    const x = tf.variable(tf.tensor(random(inputShape, rng).data, inputShape));
    const target = random([inputShape[0]!, ...(model.outputs[0]!.shape.slice(1) as number[])], rng);
    const t = tf.tensor(target.data, target.shape);
    const vars = [...model.trainableWeights.map((w) => w.read() as tf.Variable), x];
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, t)) as tf.Scalar, vars);
    const out = vars.map((v) => Float32Array.from(grads[v.name]!.dataSync() as Float32Array));
    tf.dispose([value, ...Object.values(grads), x, t]);
    model.layers.forEach((l) => l.dispose());
    await tf.setBackend('wasm');
    return out;
  }

  it.each([
    { name: 'DepthwiseConv2D', make: () => tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu' }), shape: [3, 7, 7, 4] },
    { name: 'DepthwiseConv2D stride 2', make: () => tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid' }), shape: [2, 9, 9, 3] },
    { name: 'SeparableConv2D', make: () => tf.layers.separableConv2d({ filters: 5, kernelSize: 3, padding: 'same' }), shape: [2, 6, 6, 3] },
    { name: 'BatchNormalization', make: () => tf.layers.batchNormalization({}), shape: [4, 5, 5, 3] },
    { name: 'AveragePooling2D', make: () => tf.layers.averagePooling2d({ poolSize: 2 }), shape: [2, 6, 6, 3] },
    { name: 'GlobalAveragePooling2D', make: () => tf.layers.globalAveragePooling2d({}), shape: [2, 5, 5, 4] },
  ])('$name trains on wasm: weight and input gradients equal the cpu backend\'s', async ({ make, shape }) => {
    const seed = shape.reduce((a, b) => a * 7 + b, 1);
    const wasm = await layerGrads('wasm', make, shape, seed);
    const cpu = await layerGrads('cpu', make, shape, seed);
    expect(wasm.length).toBe(cpu.length);
    wasm.forEach((g, i) => expect(relativeError(g, cpu[i]!)).toBeLessThan(1e-4));
  });

  it('the depthwise kernels leak no tensors', async () => {
    const c = depthwiseCases[2]!;
    const rng = new Rng(9);
    const x = random(c.x, rng);
    const dy = random(depthwiseOutShape(c), rng);
    const filter = random([c.k[0], c.k[1], c.x[3], c.m], rng);
    const run = async (): Promise<void> => {
      await runOn('wasm', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, { strides: c.stride, pad: c.pad, filterShape: filter.shape });
      await runOn('wasm', 'DepthwiseConv2dNativeBackpropInput', { dy, filter }, { strides: c.stride, pad: c.pad, inputShape: c.x });
    };
    await run();
    const before = tf.memory().numTensors;
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    for (let i = 0; i < 3; i++) await run();
    expect(tf.memory().numTensors).toBe(before);
    expect(backend.numDataIds()).toBe(ids);
  });
});
