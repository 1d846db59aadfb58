import { createCipheriv } from 'node:crypto';
import { FIELD_PRIME } from './field.js';

const ZERO_IV = Buffer.alloc(16);

/**
 * The pseudo-random generator that expands a 32-byte seed into a mask of
 * `length` field elements: AES-256 in counter mode over zeros (the
 * keystream), read as little-endian uint32 words; the five words >= p wrap
 * (statistical distance from uniform below 5 x 2^-32 per element).
 * Deterministic: both ends of a pair, and the coordinator after
 * reconstructing a seed, expand the same mask.
 */
export function expandMask(seed: Uint8Array, length: number): Uint32Array {
  if (seed.length !== 32) throw new RangeError('a mask seed is 32 bytes');
  const cipher = createCipheriv('aes-256-ctr', seed, ZERO_IV);
  const bytes = cipher.update(Buffer.alloc(length * 4));
  cipher.final();
  const out = new Uint32Array(bytes.buffer, bytes.byteOffset, length);
  const copy = bytes.byteOffset % 4 === 0 ? out : new Uint32Array(length);
  if (copy !== out) for (let i = 0; i < length; i++) copy[i] = bytes.readUInt32LE(i * 4);
  for (let i = 0; i < length; i++) {
    const w = copy[i]!;
    if (w >= FIELD_PRIME) copy[i] = w - FIELD_PRIME;
  }
  return copy;
}

/** `acc += sign x PRG(seed)` (mod p), expanding the mask in place of a copy kept. */
export function applyMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): void {
  const m = expandMask(seed, acc.length);
  const p = FIELD_PRIME;
  if (sign === 1) {
    for (let i = 0, n = acc.length; i < n; i++) {
      const s = acc[i]! + m[i]!;
      acc[i] = s >= p ? s - p : s;
    }
  } else {
    for (let i = 0, n = acc.length; i < n; i++) {
      const s = acc[i]! - m[i]!;
      acc[i] = s < 0 ? s + p : s;
    }
  }
}
