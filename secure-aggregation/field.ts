/**
 * The finite field masked updates live in, and the quantization of float
 * updates into it and back.
 *
 * Masked vectors are elements of GF(p), p = 2^32 - 5 (the largest prime
 * below 2^32): one uint32 per parameter on the wire, and sums of two
 * elements stay exact in float64 arithmetic. A value x with |x| <= range
 * is encoded as round(x * scale) mod p; a sum of n encodings decodes
 * exactly as long as n * range * scale < (p - 1) / 2, which is how the
 * scale is chosen (`quantizationScale`). Rounding each term moves it by at
 * most 1 / (2 scale), so the decoded sum of n values is within
 * n / (2 scale) of their true sum (`quantizationBound`); values beyond
 * +-range are clipped to it first (counted by the encoder).
 */
import { ownMemoryKernel } from '../common/wasm-module.js';
import { FIELD_OPS_WASM } from './wasm/field-ops-wasm.js';

export const FIELD_PRIME = 4_294_967_291;
const HALF = (FIELD_PRIME - 1) / 2;

export function addMod(a: number, b: number): number {
  const s = a + b;
  return s >= FIELD_PRIME ? s - FIELD_PRIME : s;
}

export function subMod(a: number, b: number): number {
  const s = a - b;
  return s < 0 ? s + FIELD_PRIME : s;
}

/*
 * The vector operations below run on int32 views of the uint32 words: a
 * uint32 above 2^31 read from a Uint32Array is a float64 in V8, which made
 * the plain loops 3x slower. Unsigned order is signed order after flipping
 * the top bit (x ^ MIN), and every add or subtract wraps mod 2^32, so the
 * results are the same words, computed without branches.
 */
const MIN = -0x8000_0000;
const P32 = FIELD_PRIME | 0;
const P_FLIPPED = P32 ^ MIN;

function int32(a: Uint32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/** (a + b) mod p for field elements as int32 bit patterns: subtract p when the sum carried past 2^32 or lies in [p, 2^32). */
function add32(a: number, b: number): number {
  const s = (a + b) | 0;
  const sx = s ^ MIN;
  const over = +(sx < (a ^ MIN)) | +(sx >= P_FLIPPED);
  return (s - (P32 & -over)) | 0;
}

/** (a - b) mod p for field elements as int32 bit patterns: add p back when it borrowed. */
function sub32(a: number, b: number): number {
  const borrow = +((a ^ MIN) < (b ^ MIN));
  return (((a - b) | 0) + (P32 & -borrow)) | 0;
}

/** A raw uint32 word (int32 bit pattern) reduced into the field: w - p when w >= p. */
function reduce32(w: number): number {
  return (w - (P32 & -((w ^ MIN) >= P_FLIPPED))) | 0;
}

/*
 * The same loops run four words at a time in WebAssembly SIMD
 * (wasm/field-ops.wat) on long vectors: chunks of the vectors are copied into
 * the module's memory, worked on there, and the accumulator's chunk copied
 * back; the words past the last multiple of four, and vectors too short for
 * the copies to pay, take the JavaScript loops. Where the module cannot run
 * (see common/wasm-module.ts) everything takes them.
 */
/** Bytes of each of the module's two working areas (the accumulator's chunk, the other vector's). */
const CHUNK_BYTES = 65536;
const CHUNK_WORDS = CHUNK_BYTES / 4;
/** Below this many words the JavaScript loop is as fast as the copies. */
const SIMD_MIN_WORDS = 1024;

interface FieldKernel {
  add(acc: number, v: number, n: number): void;
  addReduced(acc: number, w: number, n: number, negate: number): void;
  outside(v: number, n: number): number;
  acc: Uint32Array;
  other: Uint32Array;
}

let kernel: FieldKernel | null | undefined;

function fieldKernel(): FieldKernel | null {
  if (kernel === undefined) {
    const e = ownMemoryKernel<Pick<FieldKernel, 'add' | 'addReduced' | 'outside'>>(FIELD_OPS_WASM, 2 * CHUNK_BYTES);
    kernel = e === null ? null : {
      add: e.add, addReduced: e.addReduced, outside: e.outside,
      acc: new Uint32Array(e.memory.buffer, 0, CHUNK_WORDS), other: new Uint32Array(e.memory.buffer, CHUNK_BYTES, CHUNK_WORDS),
    };
  }
  return kernel;
}

/** The kernel for a vector of `n` words, or null for the JavaScript loops. */
function kernelFor(n: number): FieldKernel | null {
  return n >= SIMD_MIN_WORDS ? fieldKernel() : null;
}

/** Which implementation the field's vector loops use for long vectors here. */
export function fieldKernelKind(): 'wasm-simd' | 'js' {
  return fieldKernel() === null ? 'js' : 'wasm-simd';
}

/**
 * Runs `op` over the first multiple of four words of `acc` (and `v`, the same
 * length) chunk by chunk in the kernel's memory; returns where the
 * JavaScript loop takes over.
 */
function inKernel(k: FieldKernel, acc: Uint32Array, v: Uint32Array, op: (bytes: number) => void): number {
  const bulk = acc.length - (acc.length % 4);
  for (let at = 0; at < bulk; at += CHUNK_WORDS) {
    const m = Math.min(CHUNK_WORDS, bulk - at);
    k.acc.set(acc.subarray(at, at + m));
    k.other.set(v.subarray(at, at + m));
    op(4 * m);
    acc.set(k.acc.subarray(0, m), at);
  }
  return bulk;
}

/** In-place `acc += v (mod p)` for field elements (each < p). */
export function addVectorMod(acc: Uint32Array, v: Uint32Array): void {
  const k = kernelFor(acc.length);
  const from = k === null ? 0 : inKernel(k, acc, v, (n) => k.add(0, CHUNK_BYTES, n));
  const a32 = int32(acc);
  const v32 = int32(v);
  for (let i = from, n = a32.length; i < n; i++) a32[i] = add32(a32[i]!, v32[i]!);
}

/** In-place `acc -= v (mod p)` for field elements (each < p). */
export function subVectorMod(acc: Uint32Array, v: Uint32Array): void {
  const a32 = int32(acc);
  const v32 = int32(v);
  for (let i = 0, n = a32.length; i < n; i++) a32[i] = sub32(a32[i]!, v32[i]!);
}

/**
 * In-place `acc += sign x (words mod p)` for raw uint32 words (a keystream):
 * each word reduced into the field as it is added, in one pass.
 */
export function addReducedMod(acc: Uint32Array, words: Uint32Array, sign: 1 | -1): void {
  const k = kernelFor(acc.length);
  const from = k === null ? 0 : inKernel(k, acc, words, (n) => k.addReduced(0, CHUNK_BYTES, n, sign === 1 ? 0 : 1));
  const a32 = int32(acc);
  const w32 = int32(words);
  const n = a32.length;
  if (sign === 1) for (let i = from; i < n; i++) a32[i] = add32(a32[i]!, reduce32(w32[i]!));
  else for (let i = from; i < n; i++) a32[i] = sub32(a32[i]!, reduce32(w32[i]!));
}

/** In place: each uint32 word reduced into the field (the words >= p wrap to w - p). */
export function reduceVector(words: Uint32Array): void {
  const w32 = int32(words);
  for (let i = 0, n = w32.length; i < n; i++) w32[i] = reduce32(w32[i]!);
}

/** Index of the first word that is not a field element (>= p), or -1. */
export function firstOutsideField(v: Uint32Array): number {
  const k = kernelFor(v.length);
  let from = 0;
  if (k !== null) {
    // The kernel says whether a chunk holds one; the JavaScript loop finds it.
    const bulk = v.length - (v.length % 4);
    let at = 0;
    for (; at < bulk; at += CHUNK_WORDS) {
      const m = Math.min(CHUNK_WORDS, bulk - at);
      k.other.set(v.subarray(at, at + m));
      if (k.outside(CHUNK_BYTES, 4 * m) !== 0) break;
    }
    from = Math.min(at, bulk);
  }
  const v32 = int32(v);
  for (let i = from, n = v32.length; i < n; i++) if ((v32[i]! ^ MIN) >= P_FLIPPED) return i;
  return -1;
}

/**
 * Largest scale at which the sum of `n` values, each within +-`range`, plus
 * `headroom` more in absolute value (noise), decodes without wrapping.
 */
export function quantizationScale(n: number, range: number, headroom = 0): number {
  const scale = Math.floor(HALF / (n * range + headroom));
  return Math.max(1, Math.min(scale, 2 ** 24));
}

/** Worst-case absolute error of one coordinate of a decoded sum of `n` encoded values. */
export function quantizationBound(n: number, scale: number): number {
  return n / (2 * scale);
}

/** Encodes `x` (clipped to +-range) into the field; returns how many values were clipped. */
export function encodeVector(x: Float32Array | Float64Array, range: number, scale: number, out: Uint32Array): number {
  let clipped = 0;
  for (let i = 0, n = x.length; i < n; i++) {
    let v = x[i]!;
    if (v > range) { v = range; clipped++; } else if (v < -range) { v = -range; clipped++; }
    const q = Math.round(v * scale);
    out[i] = q < 0 ? q + FIELD_PRIME : q;
  }
  return clipped;
}

/** An exact small integer (a weight) into the field. */
export function encodeInteger(x: number): number {
  if (!Number.isSafeInteger(x) || Math.abs(x) > HALF) throw new RangeError(`${x} is not an integer the field holds`);
  return x < 0 ? x + FIELD_PRIME : x;
}

/** A field element as the signed integer it stands for (upper half = negative). */
export function decodeInteger(v: number): number {
  return v > HALF ? v - FIELD_PRIME : v;
}

/** Decodes a summed vector (signed, divided by the scale) into `out`. */
export function decodeVector(sum: Uint32Array, scale: number, out: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = decodeInteger(sum[i]!) / scale;
}
