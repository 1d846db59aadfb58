import * as tf from '@tensorflow/tfjs';
import { KERNELS_PLAIN, KERNELS_SHARED } from './kernels-wasm.js';
import { compileWasm, instantiateWasm } from '../../common/wasm-module.js';

/** A wasm memory, as far as this module needs one. */
export interface HeapMemory {
  readonly buffer: ArrayBufferLike;
}

/**
 * Strata's SIMD loops (kernels.wat), run on the wasm backend's own heap:
 * every pointer is a byte offset there. See kernels.wat for each contract.
 */
export interface SimdKernels {
  /** `g2` 0 for none; else the gradient is g + g2. */
  adam(w: number, g: number, m: number, v: number, out: number, n: number, k1: number, k2: number, b1: number, b2: number, eps: number, g2: number): void;
  /** dst [cols, rows] = src [rows, cols] transposed (not overlapping). */
  transpose(src: number, dst: number, rows: number, cols: number): void;
  /** dst [cols, rows] floats = table[src [rows, cols] bytes] transposed (`table`: 256 floats). */
  bytesToFloatsT(src: number, table: number, dst: number, rows: number, cols: number): void;
  reluGrad(g: number, y: number, n: number): void;
  /**
   * C [m, n] = A [m, k] x B [k, n], row-major with row strides lda, ldb,
   * ldc in floats (`flags` 1: A given as [k, m]; 2: C += A x B). Reads B
   * as it lies (no packing).
   */
  gemm(a: number, b: number, c: number, m: number, k: number, n: number, lda: number, ldb: number, ldc: number, flags: number): void;
  /** dst += src over n floats. */
  addTo(dst: number, src: number, n: number): void;
  /** `db` 0 for none; `relu` 1 or 0. */
  maxPool2x2Grad(x: number, dy: number, dx: number, db: number, n: number, h: number, w: number, c: number, relu: number): void;
  /** `bias` 0 for none; `relu` 1 or 0. */
  biasRelu(x: number, bias: number, rows: number, cols: number, relu: number): void;
  rowSums(g: number, rows: number, cols: number, out: number): void;
  /** `geo`: 13 i32s on the heap: n h w c oh ow kh kw co sh sw top left; `dw` zero-filled, co % 4 == 0. */
  convFilterGrad(x: number, dy: number, dw: number, geo: number): void;
  /** `geo`: 10 i32s: n c hp wp oh ow kh kw b0 nb; `xt` from padTranspose. */
  im2rowsT(xt: number, out: number, geo: number): void;
  /** `geo`: 8 i32s: n h w c top left hp wp; `out` zero-filled. */
  padTranspose(x: number, out: number, geo: number): void;
}

/** Strata's SIMD kernels on the active wasm backend's heap, if they run here. */
export function backendSimdKernels(): SimdKernels | undefined {
  const wasm = (tf.backend() as unknown as { wasm?: { wasmMemory?: HeapMemory; asm?: { memory?: HeapMemory } } }).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  return memory === undefined ? undefined : simdKernelsFor(memory);
}

const instances = new WeakMap<HeapMemory, SimdKernels | null>();

/**
 * The kernels bound to `memory` (instantiated once per memory), or
 * undefined where they cannot run (no wasm SIMD, or a memory whose limits
 * the import does not accept): callers then keep their JS loops.
 */
export function simdKernelsFor(memory: HeapMemory): SimdKernels | undefined {
  let k = instances.get(memory);
  if (k === undefined) {
    k = instantiate(memory);
    instances.set(memory, k);
  }
  return k ?? undefined;
}

function instantiate(memory: HeapMemory): SimdKernels | null {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const module = compileWasm(Buffer.from(shared ? KERNELS_SHARED : KERNELS_PLAIN, 'base64'));
  if (module === null) return null;
  try {
    return instantiateWasm<SimdKernels>(module, { env: { memory } });
  } catch {
    return null; // a memory whose limits the import does not accept
  }
}
