import * as tf from '@tensorflow/tfjs';

interface HeapBackend {
  typedArrayFromHeap(info: { shape: number[]; dtype: string; dataId: object }): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

/** Applies one step's gradients (index-aligned with the variables; undefined: none) to the variables. */
export interface HeapOptimizer {
  apply(grads: readonly (tf.TensorInfo | undefined)[]): void;
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
 */
export class HeapAdam implements HeapOptimizer {
  readonly #vars: tf.Variable[];
  readonly #m: Float32Array[];
  readonly #v: Float32Array[];
  readonly #lr: number;
  readonly #b1: number;
  readonly #b2: number;
  readonly #eps: number;
  #accB1: number;
  #accB2: number;

  constructor(vars: tf.Variable[], options: AdamOptions) {
    this.#vars = vars;
    this.#m = vars.map((v) => new Float32Array(v.size));
    this.#v = vars.map((v) => new Float32Array(v.size));
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
    const backend = tf.backend() as unknown as HeapBackend;
    // Bias corrections folded into two constants: w -= k1 m / (sqrt(k2 v) + eps).
    const k1 = this.#lr / (1 - this.#accB1);
    const k2 = 1 / (1 - this.#accB2);
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
    this.#accB1 *= this.#b1;
    this.#accB2 *= this.#b2;
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
}
