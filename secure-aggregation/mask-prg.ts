import { createCipheriv } from 'node:crypto';
import { addReducedMod, reduceVector } from './field.js';

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
  const out = keystream(seed, length).slice();
  reduceVector(out);
  return out;
}

/** Zeros the keystream is made from, grown as needed and never written. */
let zeros = Buffer.alloc(0);

/** The raw keystream of `seed` as `length` uint32 words (not yet reduced into the field). */
function keystream(seed: Uint8Array, length: number): Uint32Array {
  if (seed.length !== 32) throw new RangeError('a mask seed is 32 bytes');
  if (zeros.length < length * 4) zeros = Buffer.alloc(length * 4);
  const cipher = createCipheriv('aes-256-ctr', seed, ZERO_IV);
  const bytes = cipher.update(zeros.subarray(0, length * 4));
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, length);
  const out = new Uint32Array(length);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** `acc += sign x PRG(seed)` (mod p). */
export function applyMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): void {
  addReducedMod(acc, keystream(seed, acc.length), sign);
}
