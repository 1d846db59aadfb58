import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import { splitRows } from '../../ml/data-parallel/data-parallel-step.js';
import { runUpdateRange, updateFloats, updateRanges } from '../../ml/data-parallel/step-plan.js';
import { HeapAdam } from '../../ml/heap-adam.js';
import { Rng } from '../../ml/rng.js';
import { backendSimdKernels } from '../../ml/wasm-simd/simd-kernels.js';

describe('data-parallel steps: the split of rows and of the update', () => {
  it('splits a batch as evenly as it can, helpers taking the remainder, and not below the minimum rows per thread', () => {
    expect(splitRows(64, 2, 8)).toEqual([32, 32]);
    expect(splitRows(65, 2, 8)).toEqual([32, 33]);
    expect(splitRows(67, 3, 8)).toEqual([22, 23, 22]);
    expect(splitRows(15, 2, 8)).toBeUndefined();
    expect(splitRows(64, 1, 8)).toBeUndefined();
  });

  it('gives each thread a range of the update in multiples of 4 floats that together cover it once', () => {
    for (const [total, threads] of [[235_146, 2], [10, 3], [3, 2], [1_000_001, 4]] as const) {
      const ranges = updateRanges(total, threads);
      expect(ranges).toHaveLength(threads);
      expect(ranges[0]![0]).toBe(0);
      expect(ranges.at(-1)![1]).toBe(total);
      for (let t = 1; t < threads; t++) {
        expect(ranges[t]![0]).toBe(ranges[t - 1]![1]);
        if (ranges[t]![0] < total) expect(ranges[t]![0] % 4).toBe(0);
      }
    }
  });
});

describe('HeapAdam split across threads equals its one-thread update', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
  });

  it('ranges of the update, with helper gradients added in order, give the same bits as adding them and applying once', () => {
    const simd = backendSimdKernels();
    expect(simd).toBeDefined();
    const rng = new Rng(4);
    const shapes = [[30, 7], [7], [7, 10], [10]];
    const values = (shape: number[]) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
    const init = shapes.map(values);
    const varsA = shapes.map((s, i) => tf.variable(tf.tensor(init[i]!, s)));
    const varsB = shapes.map((s, i) => tf.variable(tf.tensor(init[i]!, s)));
    const adamA = new HeapAdam(varsA, { learningRate: 0.01 });
    const adamB = new HeapAdam(varsB, { learningRate: 0.01 });
    const helpers = 2;
    for (let step = 0; step < 3; step++) {
      const own = shapes.map(values);
      const theirs = Array.from({ length: helpers }, () => shapes.map(values));
      // A: the sum in helper order, one apply.
      const gradsA = own.map((g, i) => {
        const sum = Float32Array.from(g);
        for (const h of theirs) for (let k = 0; k < sum.length; k++) sum[k] = sum[k]! + h[i]![k]!;
        return tf.tensor(sum, shapes[i]!);
      });
      adamA.apply(gradsA);
      // B: own gradients plus each helper's gradient area (the plan's layout: variables concatenated), three ranges.
      const gradsB = own.map((g, i) => tf.tensor(g, shapes[i]!));
      const total = updateFloats(gradsB.map((g) => ({ n: g.size })));
      const areas = theirs.map((h) => {
        const flat = new Float32Array(total);
        let at = 0;
        for (const g of h) {
          flat.set(g, at);
          at += g.length;
        }
        return tf.tensor(flat);
      });
      const split = adamB.split(gradsB)!;
      expect(split).toBeDefined();
      const backend = tf.backend() as unknown as { typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
      let offset = 0;
      const offsets = shapes.map((s) => {
        const o = offset;
        offset += s.reduce((a, b) => a * b, 1);
        return o;
      });
      const update = { pieces: split.pieces.map((p) => ({ ...p, gradOffset: offsets[p.index]! })), ...split.constants };
      const areaOffsets = areas.map((a) => backend.typedArrayFromHeap(a).byteOffset);
      for (const [lo, hi] of updateRanges(total, 3)) runUpdateRange(simd!, update, areaOffsets, lo, hi);
      split.commit();
      tf.dispose([...gradsA, ...gradsB, ...areas]);
    }
    varsA.forEach((v, i) => expect(v.dataSync()).toEqual(varsB[i]!.dataSync()));
    adamA.dispose();
    adamB.dispose();
    tf.dispose([...varsA, ...varsB]);
  });

  it('an aborted split changes nothing', () => {
    const v = tf.variable(tf.tensor([1, 2, 3, 4, 5]));
    const adam = new HeapAdam([v], { learningRate: 0.1 });
    const g = tf.tensor([1, 1, 1, 1, 1]);
    const before = tf.memory().numTensors;
    adam.split([g])!.abort();
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(v.dataSync())).toEqual([1, 2, 3, 4, 5]);
    adam.dispose();
    tf.dispose([v, g]);
  });
});
