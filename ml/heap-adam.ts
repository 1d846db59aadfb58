import * as tf from '@tensorflow/tfjs';
import { backendSimdKernels, type HeapMemory, type SimdKernels } from './wasm-simd/simd-kernels.js';

interface HeapBackend {
  typedArrayFromHeap(info: { shape: number[]; dtype: string; dataId: object }): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number | null } | undefined };
  wasm: { wasmMemory?: HeapMemory; asm?: { memory?: HeapMemory } };
}

/** Applies one step's gradients (index-aligned with the variables; undefined: none) to the variables. */
export interface HeapOptimizer {
  apply(grads: readonly (tf.TensorInfo | undefined)[]): void;
  /**
   * The same update as pieces several threads can run (`AdamSplit`), where
   * this optimizer has them; else undefined. A gradient is a tensor or the
   * byte offset of its floats on the heap.
   */
  split?(grads: readonly (tf.TensorInfo | number | undefined)[]): AdamSplit | undefined;
  /** Frees state kept on the heap. */
  dispose(): void;
}

/** Where one variable's Adam update reads and writes: byte offsets on the heap, and its length in floats. */
export interface AdamOperands {
  w: number;
  g: number;
  m: number;
  v: number;
  out: number;
  n: number;
}

/** One variable's Adam update. */
export interface AdamPiece extends AdamOperands {
  /** Index of the variable. */
  index: number;
}

/**
 * One step of Adam laid out so any thread holding the SIMD kernels on this
 * heap can run any element range of it (`adam` is element-wise): a
 * data-parallel step splits the update across its threads.
 */
export interface AdamSplit {
  pieces: AdamPiece[];
  /** `adam(w, g, m, v, out, n, k1, k2, b1, b2, eps)` takes these. */
  constants: { k1: number; k2: number; b1: number; b2: number; eps: number };
  /** Assigns the new weights and advances the bias corrections: once every range ran. */
  commit(): void;
  /** Frees the new weights unassigned (the step failed before every range ran). */
  abort(): void;
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

  /** Undefined without Strata's SIMD kernels (the JS loop keeps its moments in JS arrays). */
  split(grads: readonly (tf.TensorInfo | number | undefined)[]): AdamSplit | undefined {
    if (this.#simd === undefined) return undefined;
    const backend = tf.backend() as unknown as HeapBackend;
    // Byte offsets straight from the backend's table (a typed array per lookup cost more than the rest of the split).
    const at = (info: tf.TensorInfo, shape: number[]): number => backend.dataIdMap.get(info.dataId)?.memoryOffset ?? backend.typedArrayFromHeap({ dataId: info.dataId, shape, dtype: 'float32' }).byteOffset;
    const moments = this.#ensureMoments(backend);
    const outs: { k: number; next: tf.Tensor }[] = [];
    this.#vars.forEach((variable, k) => {
      if (grads[k] !== undefined) outs.push({ k, next: tf.engine().makeTensorFromTensorInfo(backend.makeOutput(variable.shape, 'float32')) });
    });
    // Offsets after every allocation (growing the heap moves nothing, but read them once it is done).
    const pieces = outs.map(({ k, next }): AdamPiece => {
      const variable = this.#vars[k]!;
      const { m, v } = moments[k]!;
      const g = grads[k]!;
      return { index: k, w: at(variable, variable.shape), g: typeof g === 'number' ? g : at(g, variable.shape), m: at(m, m.shape), v: at(v, v.shape), out: at(next, next.shape), n: variable.size };
    });
    let open = true;
    return {
      pieces,
      constants: { k1: this.#lr / (1 - this.#accB1), k2: 1 / (1 - this.#accB2), b1: this.#b1, b2: this.#b2, eps: this.#eps },
      commit: () => {
        if (!open) return;
        open = false;
        for (const { k, next } of outs) {
          this.#vars[k]!.assign(next);
          next.dispose();
        }
        this.#accB1 *= this.#b1;
        this.#accB2 *= this.#b2;
      },
      abort: () => {
        if (!open) return;
        open = false;
        for (const { next } of outs) next.dispose();
      },
    };
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
    const moments = this.#ensureMoments(backend);
    updateEachOnHeap(this.#vars, grads, (out, w, g, k) => {
      const { m, v } = moments[k]!;
      simd.adam(w.byteOffset, g.byteOffset, at(m, m.shape), at(v, v.shape), out.byteOffset, w.length, k1, k2, this.#b1, this.#b2, this.#eps, 0);
    });
  }

  #ensureMoments(backend: HeapBackend): { m: tf.TensorInfo; v: tf.TensorInfo }[] {
    if (this.#moments === undefined) {
      this.#moments = this.#vars.map((v) => {
        const m = backend.makeOutput([v.size], 'float32');
        const vv = backend.makeOutput([v.size], 'float32');
        backend.typedArrayFromHeap(m).fill(0);
        backend.typedArrayFromHeap(vv).fill(0);
        return { m, v: vv };
      });
    }
    return this.#moments;
  }

  #applyJs(grads: readonly (tf.TensorInfo | undefined)[], k1: number, k2: number): void {
    const b1 = this.#b1;
    const b2 = this.#b2;
    const ob1 = 1 - b1;
    const ob2 = 1 - b2;
    const eps = this.#eps;
    updateEachOnHeap(this.#vars, grads, (out, w, g, k) => {
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
    const lr = Math.fround(this.#lr);
    // Rounded as tfjs rounds: the product to float32, then the difference.
    updateEachOnHeap(this.#vars, grads, (out, w, g) => {
      for (let i = 0; i < w.length; i++) out[i] = w[i]! - Math.fround(lr * g[i]!);
    });
  }

  dispose(): void {}
}

/**
 * For each variable with a gradient: a fresh output tensor, `update(out,
 * w, g, k)` writing the new values into it (views taken after the
 * allocation: heap growth detaches earlier views), then the variable
 * assigned to it (never written in place: XNNPACK caches packed weights by
 * tensor id).
 */
function updateEachOnHeap(
  vars: readonly tf.Variable[], grads: readonly (tf.TensorInfo | undefined)[], update: (out: Float32Array, w: Float32Array, g: Float32Array, k: number) => void,
): void {
  const backend = tf.backend() as unknown as HeapBackend;
  vars.forEach((variable, k) => {
    const grad = grads[k];
    if (grad === undefined) return;
    const next = tf.engine().makeTensorFromTensorInfo(backend.makeOutput(variable.shape, 'float32'));
    update(backend.typedArrayFromHeap(next), backend.typedArrayFromHeap(variable), backend.typedArrayFromHeap({ ...grad, shape: variable.shape }), k);
    variable.assign(next);
    next.dispose();
  });
}
