import * as tf from '@tensorflow/tfjs';
import { callKernel } from '../wasm-kernels/kernel-call.js';
import { simdKernelsFor, type SimdKernels } from '../wasm-simd/simd-kernels.js';

export type TensorInfo = tf.TensorInfo;

interface HeapMemory {
  readonly buffer: ArrayBufferLike;
}

/** The slice of tfjs's wasm backend the fast step uses. */
interface WasmBackendSlice {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  dataIdMap: { get(dataId: object): { memoryOffset: number | null } | undefined };
  wasm: { wasmMemory?: HeapMemory; asm?: { memory?: HeapMemory } };
}

/**
 * Tensors on the wasm heap without the engine: kernels called directly,
 * outputs owned by the caller until `free`d, and one Float32Array view of
 * the whole heap for JS loops (offsets in floats). Views go stale when the
 * heap grows, so `f32()` is read again after any allocation.
 */
export class WasmHeap {
  readonly backend: WasmBackendSlice;
  readonly #memory: HeapMemory;
  /** Strata's SIMD loops on this heap, where they run (pointers are `at(t) * 4`). */
  readonly simd: SimdKernels | undefined;
  #buffer: ArrayBufferLike | undefined;
  #f32: Float32Array<ArrayBufferLike> = new Float32Array(0);
  #i32: Int32Array<ArrayBufferLike> = new Int32Array(0);

  constructor(backend: tf.KernelBackend) {
    this.backend = backend as unknown as WasmBackendSlice;
    const memory = this.backend.wasm.wasmMemory ?? this.backend.wasm.asm?.memory;
    if (memory === undefined) throw new Error('wasm backend: heap memory not found');
    this.#memory = memory;
    this.simd = simdKernelsFor(memory);
  }

  /** The whole heap as floats; read again after anything that may allocate. */
  f32(): Float32Array<ArrayBufferLike> {
    const buffer = this.#memory.buffer;
    if (buffer !== this.#buffer || this.#f32.length * 4 !== buffer.byteLength) {
      this.#buffer = buffer;
      this.#f32 = new Float32Array(buffer);
    }
    return this.#f32;
  }

  /** The whole heap as Int32 words (offsets as in `f32()`); read again after anything that may allocate. */
  i32(): Int32Array<ArrayBufferLike> {
    const f = this.f32();
    if (this.#i32.buffer !== f.buffer || this.#i32.length !== f.length) this.#i32 = new Int32Array(f.buffer);
    return this.#i32;
  }

  /** Offset of a tensor's first float in `f32()`. */
  at(info: TensorInfo): number {
    const offset = this.backend.dataIdMap.get(info.dataId)?.memoryOffset;
    if (offset === null || offset === undefined) throw new Error('wasm backend: tensor has no heap memory');
    return offset >>> 2;
  }

  alloc(shape: number[]): TensorInfo {
    return this.backend.makeOutput(shape, 'float32');
  }

  /** A zero-filled tensor. */
  zeros(shape: number[]): TensorInfo {
    const t = this.alloc(shape);
    const o = this.at(t);
    this.f32().fill(0, o, o + sizeOf(shape));
    return t;
  }

  run(kernel: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    return callKernel(kernel, this.backend, inputs, attrs);
  }

  /** 2-D transpose of a [rows, cols] tensor. */
  transpose(x: TensorInfo, rows: number, cols: number): TensorInfo {
    return this.run('Transpose', { x: view(x, [rows, cols]) }, { perm: [1, 0] });
  }

  /** [m, k] x [k, n] on XNNPACK's untransposed path. `b` acts as the cached weights: never pass one tensor as `b` with two shapes. */
  matMul(a: TensorInfo, b: TensorInfo, m: number, k: number, n: number): TensorInfo {
    return this.run('BatchMatMul', { a: view(a, [1, m, k]), b: view(b, [1, k, n]) }, { transposeA: false, transposeB: false });
  }

  /**
   * A new [m, k] x [k, n] product. With Strata's SIMD kernels, their GEMM,
   * which reads both operands as they lie (XNNPACK packs its b at every
   * call, 4-7 ns a float, as b is new at every step); `aTransposed`: `a` is
   * given as [k, m] (a dense layer's weights as the a of W^T x input^T).
   * Without them, XNNPACK's (after an explicit transpose for `aTransposed`).
   */
  product(a: TensorInfo, b: TensorInfo, m: number, k: number, n: number, aTransposed = false): TensorInfo {
    const simd = this.simd;
    if (simd === undefined) {
      if (!aTransposed) return view(this.matMul(a, b, m, k, n), [m, n]);
      const aT = this.transpose(a, k, m);
      try {
        return view(this.matMul(aT, b, m, k, n), [m, n]);
      } finally {
        this.free(aT);
      }
    }
    const out = this.alloc([m, n]);
    simd.gemm(this.at(a) * 4, this.at(b) * 4, this.at(out) * 4, m, k, n, aTransposed ? m : k, n, n, aTransposed ? 1 : 0);
    return out;
  }

  free(...infos: (TensorInfo | undefined)[]): void {
    for (const info of infos) if (info !== undefined) this.backend.disposeData(info.dataId);
  }

  /** Hands a tensor to the engine (which then owns and disposes it). */
  toTensor<R extends tf.Rank>(info: TensorInfo): tf.Tensor<R> {
    return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
  }
}

/** The same data seen with another shape (no copy, no ownership: free the original only). */
export function view(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
