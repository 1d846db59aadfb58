import * as tf from '@tensorflow/tfjs';
import type { DataSplit } from './datasets/dataset.js';

/**
 * Builds model-ready batches from compact in-memory samples, reusing its
 * buffers: features scaled to float32, labels one-hot.
 */
export class BatchBuilder {
  readonly #featureSize: number;
  readonly #numClasses: number;
  readonly #scale: number;
  #x = new Float32Array(0);
  #y = new Float32Array(0);

  constructor(featureSize: number, numClasses: number, scale: number) {
    this.#featureSize = featureSize;
    this.#numClasses = numClasses;
    this.#scale = scale;
  }

  /**
   * One batch from several sources (stream rows + replay-memory rows), in
   * the order given (caller disposes).
   */
  buildMixed(parts: readonly { split: DataSplit; indices: ArrayLike<number> }[]): { x: tf.Tensor2D; y: tf.Tensor2D } {
    const n = parts.reduce((k, p) => k + p.indices.length, 0);
    const { x, y } = this.#buffers(n);
    let r = 0;
    for (const { split, indices } of parts) {
      this.#fill(split, indices, 0, indices.length, x, y, r);
      r += indices.length;
    }
    return this.#tensors(x, y, n);
  }

  /** Zeroed views of the reusable buffers for `n` rows. */
  #buffers(n: number): { x: Float32Array; y: Float32Array } {
    const fs = this.#featureSize;
    const nc = this.#numClasses;
    if (this.#x.length < n * fs) this.#x = new Float32Array(n * fs);
    if (this.#y.length < n * nc) this.#y = new Float32Array(n * nc);
    const y = this.#y.subarray(0, n * nc);
    y.fill(0);
    return { x: this.#x.subarray(0, n * fs), y };
  }

  #tensors(x: Float32Array, y: Float32Array, n: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
    return { x: tf.tensor2d(x, [n, this.#featureSize], 'float32'), y: tf.tensor2d(y, [n, this.#numClasses], 'float32') };
  }

  #fill(split: DataSplit, indices: ArrayLike<number>, start: number, end: number, x: Float32Array, y: Float32Array, row0: number): void {
    const fs = this.#featureSize;
    const nc = this.#numClasses;
    const src = split.features;
    const scale = this.#scale;
    for (let r = 0; r < end - start; r++) {
      const i = indices[start + r]!;
      const base = i * fs;
      const dst = (row0 + r) * fs;
      if (scale === 1) x.set(src.subarray(base, base + fs), dst);
      else for (let k = 0; k < fs; k++) x[dst + k] = src[base + k]! * scale;
      y[(row0 + r) * nc + split.labels[i]!] = 1;
    }
  }

  /** Tensors for rows `indices[start..end)` of `split` (caller disposes). */
  build(split: DataSplit, indices: ArrayLike<number>, start = 0, end = indices.length): { x: tf.Tensor2D; y: tf.Tensor2D } {
    const n = end - start;
    const { x, y } = this.#buffers(n);
    this.#fill(split, indices, start, end, x, y, 0);
    return this.#tensors(x, y, n);
  }
}
