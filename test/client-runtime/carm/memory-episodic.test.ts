import { describe, expect, it } from 'vitest';
import { EpisodicMemory, type EpisodicMemoryOptions } from '../../../client-runtime/carm/episodic-memory.js';
import { isStrataError } from '../../../common/strata-error.js';
import { Rng } from '../../../ml/rng.js';

const F = 16;

function mem(options: Partial<EpisodicMemoryOptions> = {}): EpisodicMemory {
  return new EpisodicMemory({ capacity: 100, featureSize: F, featureType: 'uint8', numClasses: 10, seed: 1, ...options });
}

/** Features whose first bytes say (label, n), so a slot's content can be checked. */
function feat(label: number, n: number): Uint8Array {
  const f = new Uint8Array(F);
  f[0] = label;
  f[1] = n & 0xff;
  f[2] = (n >> 8) & 0xff;
  return f;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isStrataError(err) ? err.code : 'not a StrataError';
  }
  return undefined;
}

describe('EpisodicMemory: class-balanced fill', () => {
  it('keeps 20 of each of 5 classes in 100 slots', () => {
    const m = mem({ numClasses: 5 });
    const rng = new Rng(3);
    for (let n = 0; n < 2000; n++) m.observe(feat(n % 5, n), n % 5, 0);
    expect(m.size).toBe(100);
    expect(m.countsByClass()).toEqual([20, 20, 20, 20, 20]);
    // Every slot's content belongs to its label.
    for (let s = 0; s < m.size; s++) expect(m.asSplit().features[s * F]).toBe(m.labelOf(s));
    expect(m.sampleSlots(10, rng)).toHaveLength(10);
  });

  it('rebalances class-incrementally: 2 classes, then 4, then 5', () => {
    const m = mem({ numClasses: 5 });
    let n = 0;
    for (; n < 600; n++) m.observe(feat(n % 2, n), n % 2, 0);
    expect(m.countsByClass()).toEqual([50, 50, 0, 0, 0]);
    for (let i = 0; i < 600; i++, n++) m.observe(feat(2 + (i % 2), n), 2 + (i % 2), 1);
    expect(m.countsByClass()).toEqual([25, 25, 25, 25, 0]);
    for (let i = 0; i < 300; i++, n++) m.observe(feat(4, n), 4, 2);
    expect(m.countsByClass()).toEqual([20, 20, 20, 20, 20]);
    expect(m.taskOf(m.sampleSlots(100, new Rng(1)).find((s) => m.labelOf(s) === 4)!)).toBe(2);
  });

  it('never replaces a slot for a sample of the largest class', () => {
    const m = mem({ capacity: 10, numClasses: 3 });
    for (let n = 0; n < 10; n++) m.observe(feat(0, n), 0, 0);
    expect(m.observe(feat(0, 99), 0, 0)).toBe(-1);
    expect(m.observe(feat(1, 100), 1, 0)).toBeGreaterThanOrEqual(0);
    expect(m.countsByClass()).toEqual([9, 1, 0]);
  });
});

describe('EpisodicMemory: reservoir fill', () => {
  it('fills, then keeps each seen sample with probability capacity/seen', () => {
    const m = mem({ sampling: 'reservoir', seed: 7 });
    for (let n = 0; n < 100; n++) expect(m.observe(feat(n % 10, n), n % 10, 0)).toBe(n);
    // 10 classes in sequence, 1000 samples each: each class ends near 10 slots.
    const counts = new Array<number>(10).fill(0);
    const trials = 20;
    for (let t = 0; t < trials; t++) {
      const r = mem({ sampling: 'reservoir', seed: t });
      for (let c = 0; c < 10; c++) for (let i = 0; i < 1000; i++) r.observe(feat(c, i), c, c);
      expect(r.size).toBe(100);
      r.countsByClass().forEach((k, c) => (counts[c]! += k));
      expect(r.seen).toBe(10_000);
    }
    for (const k of counts) expect(k / trials).toBeGreaterThan(7);
    for (const k of counts) expect(k / trials).toBeLessThan(13);
  });
});

describe('EpisodicMemory: buffers', () => {
  it('reports the bytes it allocated, float32 features at 4 bytes each', () => {
    const u8 = mem({ capacity: 100, featureSize: 784 });
    const f32 = mem({ capacity: 100, featureSize: 784, featureType: 'float32' });
    const withLogits = mem({ capacity: 100, featureSize: 784, logitsSize: 10 });
    expect(u8.bytes).toBeGreaterThanOrEqual(100 * 784 + 100);
    expect(u8.bytes).toBeLessThan(100 * 784 * 1.5);
    expect(f32.bytes - u8.bytes).toBe(100 * 784 * 3);
    expect(withLogits.bytes - u8.bytes).toBe(100 * 10 * 4);
  });

  it('asSplit is a view over the slots, not a copy', () => {
    const m = mem({ numClasses: 2 });
    for (let n = 0; n < 5; n++) m.observe(feat(n % 2, n), n % 2, 0);
    const split = m.asSplit();
    expect(split.count).toBe(5);
    expect(split.features.length).toBe(5 * F);
    expect(Array.from(split.labels)).toEqual([0, 1, 0, 1, 0]);
    m.replace(2, feat(0, 777), 0, 3);
    expect(split.features[2 * F + 1]).toBe(777 & 0xff);
    expect(m.taskOf(2)).toBe(3);
  });

  it('stores logits with a sample and drops them when a swap-in has none', () => {
    const m = mem({ numClasses: 3, logitsSize: 3 });
    m.observe(feat(1, 0), 1, 0, Float32Array.of(0.1, 0.7, 0.2));
    m.observe(feat(2, 1), 2, 0);
    expect(Array.from(m.logitsOf(0)!)).toEqual([Float32Array.of(0.1)[0], Float32Array.of(0.7)[0], Float32Array.of(0.2)[0]]);
    expect(m.logitsOf(1)).toBeNull();
    m.replace(0, feat(1, 5), 1, 0, null);
    expect(m.logitsOf(0)).toBeNull();
  });

  it('sampleSlots gives distinct slots, or all of them', () => {
    const m = mem();
    for (let n = 0; n < 60; n++) m.observe(feat(n % 10, n), n % 10, 0);
    const rng = new Rng(5);
    for (let t = 0; t < 50; t++) {
      const s = m.sampleSlots(10, rng);
      expect(new Set(s).size).toBe(10);
      for (const x of s) expect(x >= 0 && x < 60).toBe(true);
    }
    expect([...m.sampleSlots(500, rng)].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    m.observe(feat(0, 60), 0, 0);
    expect(new Set(m.sampleSlots(61, rng)).size).toBe(61);
  });
});

describe('EpisodicMemory: resize', () => {
  it('shrinking keeps a class-balanced subset with the samples intact', () => {
    const m = mem({ numClasses: 4 });
    // 40 / 30 / 20 / 10
    let n = 0;
    for (const [c, k] of [[0, 40], [1, 30], [2, 20], [3, 10]] as const) for (let i = 0; i < k; i++) m.observe(feat(c, n++), c, c);
    expect(m.countsByClass()).toEqual([40, 30, 20, 10]);
    m.resize(40, new Rng(1));
    expect(m.capacity).toBe(40);
    expect(m.size).toBe(40);
    expect(m.countsByClass()).toEqual([10, 10, 10, 10]);
    for (let s = 0; s < m.size; s++) {
      expect(m.featuresOf(s)[0]).toBe(m.labelOf(s));
      expect(m.taskOf(s)).toBe(m.labelOf(s));
    }
    m.resize(20, new Rng(2));
    expect(m.countsByClass()).toEqual([5, 5, 5, 5]);
    expect(m.bytes).toBeLessThan(mem({ numClasses: 4 }).bytes);
  });

  it('growing keeps everything and the EM fills up again', () => {
    const m = mem({ capacity: 20, numClasses: 2 });
    for (let n = 0; n < 20; n++) m.observe(feat(n % 2, n), n % 2, 0);
    const before = Array.from({ length: 20 }, (_, s) => m.featuresOf(s)[1]);
    m.resize(40, new Rng(1));
    expect(m.size).toBe(20);
    expect(Array.from({ length: 20 }, (_, s) => m.featuresOf(s)[1])).toEqual(before);
    for (let n = 20; n < 40; n++) expect(m.observe(feat(n % 2, n), n % 2, 0)).toBe(n);
    expect(m.countsByClass()).toEqual([20, 20]);
  });

  it('gives every slot a new generation; a same-class swap-in keeps it', () => {
    const m = mem({ capacity: 4, numClasses: 2 });
    for (let n = 0; n < 4; n++) m.observe(feat(n % 2, n), n % 2, 0);
    const g = [0, 1, 2, 3].map((s) => m.generationOf(s));
    expect(new Set(g).size).toBe(4);
    m.replace(0, feat(0, 9), 0, 0);
    expect(m.generationOf(0)).toBe(g[0]);
    m.replace(1, feat(0, 9), 0, 0, null, { allowClassChange: true });
    expect(m.generationOf(1)).not.toBe(g[1]);
    m.resize(4, new Rng(1));
    for (let s = 0; s < 4; s++) expect(g).not.toContain(m.generationOf(s));
    expect(m.generationOf(4)).toBe(-1);
  });
});

describe('EpisodicMemory: errors', () => {
  it('bad options fail with STRATA_ERR_BAD_OPTION naming the option', () => {
    expect(codeOf(() => mem({ capacity: -1 }))).toBe('STRATA_ERR_BAD_OPTION');
    expect(codeOf(() => mem({ featureSize: 0 }))).toBe('STRATA_ERR_BAD_OPTION');
    expect(codeOf(() => mem({ numClasses: 300 }))).toBe('STRATA_ERR_BAD_OPTION');
    expect(codeOf(() => mem({ sampling: 'fifo' as never }))).toBe('STRATA_ERR_BAD_OPTION');
    expect(codeOf(() => mem({ featureType: 'int8' as never }))).toBe('STRATA_ERR_BAD_OPTION');
  });

  it('bad samples and slots fail with coded errors', () => {
    const m = mem({ numClasses: 3 });
    m.observe(feat(0, 0), 0, 0);
    expect(codeOf(() => m.observe(new Uint8Array(3), 0, 0))).toBe('STRATA_ERR_BAD_SAMPLE');
    expect(codeOf(() => m.observe(new Float32Array(F), 0, 0))).toBe('STRATA_ERR_BAD_SAMPLE');
    expect(codeOf(() => m.observe(feat(0, 0), 3, 0))).toBe('STRATA_ERR_BAD_SAMPLE');
    expect(codeOf(() => m.replace(0, feat(1, 0), 1, 0))).toBe('STRATA_ERR_BAD_SAMPLE');
    expect(codeOf(() => m.replace(5, feat(0, 0), 0, 0))).toBe('STRATA_ERR_BAD_SLOT');
    expect(codeOf(() => m.labelOf(1))).toBe('STRATA_ERR_BAD_SLOT');
  });

  it('a zero-capacity memory holds nothing', () => {
    const m = mem({ capacity: 0 });
    expect(m.observe(feat(0, 0), 0, 0)).toBe(-1);
    expect(m.size).toBe(0);
    expect(m.sampleSlots(10, new Rng(1))).toHaveLength(0);
    expect(m.asSplit().count).toBe(0);
  });
});
