import * as tf from '@tensorflow/tfjs';
import { backendSimdKernels, type HeapMemory, type SimdKernels } from './wasm-simd/simd-kernels.js';

interface HeapBackend {
  typedArrayFromHeap(info: { shape: number[]; dtype: string; dataId: object }): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  wasm: { wasmMemory?: HeapMemory; asm?: { memory?: HeapMemory } };
}

/** Applies one step's gradients (index-aligned with the variables; undefined: none) to the variables. */
export interface HeapOptimizer {
  apply(grads: readonly (tf.TensorInfo | undefined)[]): void;
  /** Frees state kept on the heap. */
  dispose(): void;
}


export interface AdamOptions {
  learningRate: number;
  /** Defaults as tfjs: 0.9, 0.999, 1e-7. */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Whether the active backend keeps tensors in a heap we can update in place (wasm). */
export function heapBackendActive(): boolean {
  return typeof (tf.backend() as unknown as Partial<HeapBackend>).typedArrayFromHeap === 'function';
}

/**
 * Adam, fused: one pass over each variable's memory in the wasm heap
 * instead of ~10 tfjs kernel launches per variable per step. Same update
 * rule and constants as `tf.train.adam` (bias correction by beta^t, epsilon
 * outside the square root), so results agree to float rounding.
 *
 * Each step writes the new values into a fresh tensor and assigns it,
 * rather than updating in place: the wasm backend's XNNPACK operators cache
 * packed weights by tensor id, so an in-place write would go unseen.
 *
 * With Strata's SIMD kernels (kernels.wat) the moments live on the heap
 * too and one wasm loop does 4 weights at a time (free them with
 * `dispose()`); otherwise a JS loop over JS arrays does the same update.
 */
export class HeapAdam implements HeapOptimizer {
  readonly #vars: tf.Variable[];
  readonly #m: Float32Array[];
  readonly #v: Float32Array[];
  readonly #simd: SimdKernels | undefined;
  /** The moments on the heap (SIMD path), allocated at the first step. */
  #moments: { m: tf.TensorInfo; v: tf.TensorInfo }[] | undefined;
  readonly #lr: number;
  readonly #b1: number;
  readonly #b2: number;
  readonly #eps: number;
  #accB1: number;
  #accB2: number;

  constructor(vars: tf.Variable[], options: AdamOptions) {
    this.#vars = vars;
    this.#simd = backendSimdKernels();
    this.#m = this.#simd === undefined ? vars.map((v) => new Float32Array(v.size)) : [];
    this.#v = this.#simd === undefined ? vars.map((v) => new Float32Array(v.size)) : [];
    this.#lr = options.learningRate;
    this.#b1 = options.beta1 ?? 0.9;
    this.#b2 = options.beta2 ?? 0.999;
    this.#eps = options.epsilon ?? 1e-7;
    this.#accB1 = this.#b1;
    this.#accB2 = this.#b2;
  }

  /** Computes the loss and its gradients with tfjs's autograd, updates the variables, returns the loss. */
  minimize(lossFn: () => tf.Scalar): number {
    const { value, grads } = tf.variableGrads(lossFn, this.#vars);
    try {
      this.apply(this.#vars.map((v) => grads[v.name]));
      return value.dataSync()[0]!;
    } finally {
      value.dispose();
      for (const t of Object.values(grads)) t.dispose();
    }
  }

  apply(grads: readonly (tf.TensorInfo | undefined)[]): void {
    // Bias corrections folded into two constants: w -= k1 m / (sqrt(k2 v) + eps).
    const k1 = this.#lr / (1 - this.#accB1);
    const k2 = 1 / (1 - this.#accB2);
    if (this.#simd !== undefined) this.#applySimd(this.#simd, grads, k1, k2);
    else this.#applyJs(grads, k1, k2);
    this.#accB1 *= this.#b1;
    this.#accB2 *= this.#b2;
  }

  #applySimd(simd: SimdKernels, grads: readonly (tf.TensorInfo | undefined)[], k1: number, k2: number): void {
    const backend = tf.backend() as unknown as HeapBackend;
    const at = (info: tf.TensorInfo, shape: number[]): number => backend.typedArrayFromHeap({ dataId: info.dataId, shape, dtype: 'float32' }).byteOffset;
    if (this.#moments === undefined) {
      this.#moments = this.#vars.map((v) => {
        const m = backend.makeOutput([v.size], 'float32');
        const vv = backend.makeOutput([v.size], 'float32');
        backend.typedArrayFromHeap(m).fill(0);
        backend.typedArrayFromHeap(vv).fill(0);
        return { m, v: vv };
      });
    }
    this.#vars.forEach((variable, k) => {
      const grad = grads[k];
      if (grad === undefined) return;
      const next = tf.engine().makeTensorFromTensorInfo(backend.makeOutput(variable.shape, 'float32'));
      const { m, v } = this.#moments![k]!;
      simd.adam(at(variable, variable.shape), at(grad, variable.shape), at(m, m.shape), at(v, v.shape), at(next, next.shape), variable.size,
        k1, k2, this.#b1, this.#b2, this.#eps);
      variable.assign(next);
      next.dispose();
    });
  }

  #applyJs(grads: readonly (tf.TensorInfo | undefined)[], k1: number, k2: number): void {
    const backend = tf.backend() as unknown as HeapBackend;
    const b1 = this.#b1;
    const b2 = this.#b2;
    const ob1 = 1 - b1;
    const ob2 = 1 - b2;
    const eps = this.#eps;
    this.#vars.forEach((variable, k) => {
      const grad = grads[k];
      if (grad === undefined) return;
      const next = tf.engine().makeTensorFromTensorInfo(backend.makeOutput(variable.shape, 'float32'));
      // Views after the allocation: heap growth detaches earlier views.
      const out = backend.typedArrayFromHeap(next);
      const w = backend.typedArrayFromHeap(variable);
      const g = backend.typedArrayFromHeap({ ...grad, shape: variable.shape });
      const m = this.#m[k]!;
      const v = this.#v[k]!;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]!;
        const mi = b1 * m[i]! + ob1 * gi;
        const vi = b2 * v[i]! + ob2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        out[i] = w[i]! - (k1 * mi) / (Math.sqrt(vi * k2) + eps);
      }
      variable.assign(next);
      next.dispose();
    });
  }

  dispose(): void {
    const backend = tf.backend() as unknown as HeapBackend;
    for (const { m, v } of this.#moments ?? []) {
      backend.disposeData(m.dataId);
      backend.disposeData(v.dataId);
    }
    this.#moments = undefined;
  }
}

/** Plain SGD on the heap, as `tf.train.sgd`: w -= lr * g. */
export class HeapSgd implements HeapOptimizer {
  readonly #vars: tf.Variable[];
  readonly #lr: number;

  constructor(vars: tf.Variable[], learningRate: number) {
    this.#vars = vars;
    this.#lr = learningRate;
  }

  apply(grads: readonly (tf.TensorInfo | undefined)[]): void {
    const backend = tf.backend() as unknown as HeapBackend;
    const lr = Math.fround(this.#lr);
    this.#vars.forEach((variable, k) => {
      const grad = grads[k];
      if (grad === undefined) return;
      const next = tf.engine().makeTensorFromTensorInfo(backend.makeOutput(variable.shape, 'float32'));
      const out = backend.typedArrayFromHeap(next);
      const w = backend.typedArrayFromHeap(variable);
      const g = backend.typedArrayFromHeap({ ...grad, shape: variable.shape });
      // Rounded as tfjs rounds: the product to float32, then the difference.
      for (let i = 0; i < w.length; i++) out[i] = w[i]! - Math.fround(lr * g[i]!);
      variable.assign(next);
      next.dispose();
    });
  }

  dispose(): void {}
}
