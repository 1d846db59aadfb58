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

/** In-place `acc += v (mod p)`. */
export function addVectorMod(acc: Uint32Array, v: Uint32Array): void {
  const p = FIELD_PRIME;
  for (let i = 0, n = acc.length; i < n; i++) {
    const s = acc[i]! + v[i]!;
    acc[i] = s >= p ? s - p : s;
  }
}

/** In-place `acc -= v (mod p)`. */
export function subVectorMod(acc: Uint32Array, v: Uint32Array): void {
  const p = FIELD_PRIME;
  for (let i = 0, n = acc.length; i < n; i++) {
    const s = acc[i]! - v[i]!;
    acc[i] = s < 0 ? s + p : s;
  }
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
