import { describe, expect, it } from 'vitest';
import { FIELD_PRIME, addReducedMod, addVectorMod, fieldKernelKind, firstOutsideField, reduceVector, subVectorMod } from '../../secure-aggregation/field.js';

const P = FIELD_PRIME;
/** Field elements at every edge the int32 arithmetic could get wrong, then random ones. */
const EDGES = [0, 1, 2, 4, 5, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, P - 6, P - 5, P - 2, P - 1];

function elements(n: number, seed: number): Uint32Array {
  let x = seed >>> 0;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = i < EDGES.length ? EDGES[i]! : x % P;
  }
  return out;
}

describe('field vector operations (int32, branch-free)', () => {
  it('add and subtract give (a +- b) mod p for every pair of edge values and random ones', () => {
    const a: number[] = [];
    const b: number[] = [];
    for (const x of EDGES) for (const y of EDGES) { a.push(x); b.push(y); }
    const ra = elements(5000, 7);
    const rb = elements(5000, 11).reverse();
    const A = Uint32Array.from([...a, ...ra]);
    const B = Uint32Array.from([...b, ...rb]);
    const sum = A.slice();
    addVectorMod(sum, B);
    const diff = A.slice();
    subVectorMod(diff, B);
    for (let i = 0; i < A.length; i++) {
      expect(sum[i], `${A[i]} + ${B[i]}`).toBe((A[i]! + B[i]!) % P);
      expect(diff[i], `${A[i]} - ${B[i]}`).toBe((A[i]! - B[i]! + P) % P);
    }
  });

  it('adds and subtracts raw words (a keystream) reduced into the field in one pass, as reduce-then-add does', () => {
    const acc = elements(3000, 5);
    const raw = Uint32Array.from({ length: 3000 }, (_, i) => (i < 8 ? [P, P + 1, P + 4, 2 ** 32 - 1, 0, P - 1, 2 ** 31, 1][i]! : (Math.imul(i, 2654435761) >>> 0)));
    const reduced = raw.slice();
    reduceVector(reduced);
    for (const sign of [1, -1] as const) {
      const fused = acc.slice();
      addReducedMod(fused, raw, sign);
      const twoPass = acc.slice();
      if (sign === 1) addVectorMod(twoPass, reduced);
      else subVectorMod(twoPass, reduced);
      expect([...fused]).toEqual([...twoPass]);
    }
  });

  it('reduces raw words into the field and finds the first word outside it', () => {
    const words = Uint32Array.from([0, P - 1, P, P + 1, 2 ** 32 - 1, 2 ** 31, 12345]);
    expect(firstOutsideField(words)).toBe(2);
    expect(firstOutsideField(words.subarray(0, 2))).toBe(-1);
    reduceVector(words);
    expect([...words]).toEqual([0, P - 1, 0, 1, 4, 2 ** 31, 12345]);
    expect(firstOutsideField(words)).toBe(-1);
  });

  it('long vectors (WebAssembly SIMD, chunk by chunk, with a JavaScript tail) give the same words as the scalar definitions', () => {
    expect(fieldKernelKind()).toBe('wasm-simd');
    // Over two 16,384-word chunks, not a multiple of four; edge values at the start, at chunk seams and in the tail.
    const n = 40_003;
    const a = elements(n, 3);
    const b = elements(n, 9).reverse();
    const raw = Uint32Array.from({ length: n }, (_, i) => Math.imul(i + 1, 2654435761) >>> 0);
    for (const at of [16_382, 16_384, 32_767, n - 3, n - 1]) {
      for (let j = 0; j < EDGES.length && at + j < n; j++) { a[at + j] = EDGES[j]!; b[at + j] = EDGES[EDGES.length - 1 - j]!; }
      raw[at] = 2 ** 32 - 1;
      if (at + 1 < n) raw[at + 1] = P;
    }
    const sum = a.slice();
    addVectorMod(sum, b);
    const plus = a.slice();
    addReducedMod(plus, raw, 1);
    const minus = a.slice();
    addReducedMod(minus, raw, -1);
    for (let i = 0; i < n; i++) {
      const r = raw[i]! >= P ? raw[i]! - P : raw[i]!;
      if (sum[i] !== (a[i]! + b[i]!) % P) expect(sum[i], `${a[i]} + ${b[i]} at ${i}`).toBe((a[i]! + b[i]!) % P);
      if (plus[i] !== (a[i]! + r) % P) expect(plus[i], `${a[i]} + (${raw[i]} mod p) at ${i}`).toBe((a[i]! + r) % P);
      if (minus[i] !== (a[i]! - r + P) % P) expect(minus[i], `${a[i]} - (${raw[i]} mod p) at ${i}`).toBe((a[i]! - r + P) % P);
    }
    // The first word outside the field, wherever it lies: in a chunk, at a seam, in the tail, or nowhere.
    expect(firstOutsideField(a)).toBe(-1);
    for (const at of [0, 5_000, 16_383, 16_384, 30_001, n - 2, n - 1]) {
      const v = a.slice();
      v[at] = P + (at % 5);
      if (at + 7 < n) v[at + 7] = 2 ** 32 - 1;
      expect(firstOutsideField(v)).toBe(at);
    }
  });
});
