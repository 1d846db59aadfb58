/**
 * Checking a wasm kernel against the cpu backend: run a kernel on either
 * backend from plain arrays, random inputs, and the largest error relative
 * to the reference's largest magnitude.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { Rng } from '../../ml/rng.js';

/** Runs a kernel on one backend from plain arrays and reads the result back. */
export async function runOn(backend: string, kernel: string, inputs: Record<string, { data: Float32Array; shape: number[] }>, attrs: object): Promise<Float32Array> {
  await tf.setBackend(backend);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.data, v.shape, 'float32');
  const out = tf.engine().runKernel(kernel, tensors as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
  const data = out.dataSync() as Float32Array;
  out.dispose();
  for (const t of Object.values(tensors)) t.dispose();
  await tf.setBackend('wasm');
  return Float32Array.from(data);
}

export function random(shape: number[], rng: Rng): { data: Float32Array; shape: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal();
  return { data, shape };
}

export function relativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    maxRef = Math.max(maxRef, Math.abs(b[i]!));
  }
  return maxDiff / Math.max(maxRef, 1e-12);
}
