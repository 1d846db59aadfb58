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

/** In-place `acc += v (mod p)` for field elements (each < p). */
export function addVectorMod(acc: Uint32Array, v: Uint32Array): void {
  const a32 = int32(acc);
  const v32 = int32(v);
  for (let i = 0, n = a32.length; i < n; i++) a32[i] = add32(a32[i]!, v32[i]!);
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
  const a32 = int32(acc);
  const w32 = int32(words);
  const n = a32.length;
  if (sign === 1) for (let i = 0; i < n; i++) a32[i] = add32(a32[i]!, reduce32(w32[i]!));
  else for (let i = 0; i < n; i++) a32[i] = sub32(a32[i]!, reduce32(w32[i]!));
}

/** In place: each uint32 word reduced into the field (the words >= p wrap to w - p). */
export function reduceVector(words: Uint32Array): void {
  const w32 = int32(words);
  for (let i = 0, n = w32.length; i < n; i++) w32[i] = reduce32(w32[i]!);
}

/** Index of the first word that is not a field element (>= p), or -1. */
export function firstOutsideField(v: Uint32Array): number {
  const v32 = int32(v);
  for (let i = 0, n = v32.length; i < n; i++) if ((v32[i]! ^ MIN) >= P_FLIPPED) return i;
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
