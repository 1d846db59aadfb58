import { describe, expect, it } from 'vitest';
import { MeanAccumulator, deltaNorm } from '../../coordinator/strategies/index.js';
import { SimdVectors, simdAvailable } from '../../coordinator/strategies/simd-vectors.js';

/** The scalar loops the kernels replace, as they were. */
function referenceNorm(v: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n4 = v.length - (v.length % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    s0 += v[i]! * v[i]!;
    s1 += v[i + 1]! * v[i + 1]!;
    s2 += v[i + 2]! * v[i + 2]!;
    s3 += v[i + 3]! * v[i + 3]!;
  }
  for (; i < v.length; i++) s0 += v[i]! * v[i]!;
  return Math.sqrt(s0 + s1 + s2 + s3);
}

function randomDelta(n: number, seed: number): Float32Array {
  let x = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = ((x / 2 ** 32) - 0.5) * 10 ** ((x % 7) - 4);
  }
  return out;
}

describe('SIMD intake kernels', () => {
  it('run here (Node 20 has WebAssembly SIMD)', () => {
    expect(simdAvailable()).toBe(true);
  });

  it.each([1024, 1027, 1030, 100_003])('norm and weighted sum of %i values are bit-identical to the scalar loops', (n) => {
    const deltas = [randomDelta(n, 1), randomDelta(n, 2), randomDelta(n, 3)];
    for (const d of deltas) expect(deltaNorm(d)).toBe(referenceNorm(d));
    const acc = new MeanAccumulator(n);
    const ref = new Float64Array(n);
    deltas.forEach((d, k) => {
      acc.add(d, 10 + k, k === 1 ? 0.5 : 1);
      const f = (10 + k) * (k === 1 ? 0.5 : 1);
      for (let i = 0; i < n; i++) ref[i]! += f * d[i]!;
    });
    const total = 10 + 11 + 12;
    const out = acc.result();
    for (let i = 0; i < n; i++) {
      if (out[i] !== Math.fround(ref[i]! * (1 / total))) throw new Error(`differs at ${i}`);
    }
  });

  it('a non-finite value makes the norm non-finite (the finiteness check rides on it)', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const at of [0, 1, 2, 3, 1500, 2047]) {
        const d = randomDelta(2048, 9);
        d[at] = bad;
        expect(Number.isFinite(deltaNorm(d)), `${bad} at ${at}`).toBe(false);
      }
    }
  });

  it('an accumulator\'s staged copy is read in place by the norm and by add, with the same bits as unstaged deltas', () => {
    const n = 5003;
    const deltas = [randomDelta(n, 4), randomDelta(n, 5), randomDelta(n, 6)];
    const staged = new MeanAccumulator(n);
    const plain = new MeanAccumulator(n);
    expect(staged.stage).toBeTypeOf('function');
    for (const [k, d] of deltas.entries()) {
      const copy = staged.stage!(d);
      expect(copy).not.toBe(d);
      expect(SimdVectors.holding(copy)).toBeDefined();
      expect(SimdVectors.holding(d)).toBeUndefined();
      expect(deltaNorm(copy)).toBe(referenceNorm(d));
      staged.add(copy, 3 + k);
      plain.add(d, 3 + k);
    }
    expect([...staged.result()]).toEqual([...plain.result()]);
    // A staged copy of one accumulator given to another is copied in like any delta.
    const other = new MeanAccumulator(n);
    other.add(staged.stage!(deltas[0]!), 1);
    const ref = new MeanAccumulator(n);
    ref.add(deltas[0]!, 1);
    expect([...other.result()]).toEqual([...ref.result()]);
    // Below the SIMD threshold there is no staging: deltas stay where they are.
    expect(new MeanAccumulator(16).stage).toBeUndefined();
  });

  it('a kernel instance stages a shorter vector than its capacity without stale values', () => {
    const k = new SimdVectors(4096, false);
    k.squares(new Float32Array(4096).fill(3));
    const short = new Float32Array(2048).fill(1);
    expect([...k.squares(short)]).toEqual([512, 512, 512, 512]);
  });
});
