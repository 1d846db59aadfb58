import { describe, expect, it } from 'vitest';
import { selectSwapSlots, swapCount, type ReplayedSampleInfo } from '../../../client-runtime/carm/swap-policy.js';
import { isStrataError } from '../../../common/strata-error.js';
import { Rng } from '../../../ml/rng.js';

function replayedOf(n: number, classes: number, seed = 1): ReplayedSampleInfo[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({ slot: 100 + i, label: i % classes, correct: rng.next() < 0.5, entropy: rng.next() }));
}

describe('selectSwapSlots', () => {
  it('picks ceil(ratio x n) distinct replayed slots for every policy', () => {
    const cases: Array<[number, number, number]> = [
      [0.5, 10, 5], [0.5, 9, 5], [0.7, 10, 7], [0.2, 10, 2], [1, 10, 10], [0, 10, 0], [0.01, 3, 1], [0.3, 10, 3],
    ];
    for (const policy of ['random', 'hybrid', 'dynamic'] as const) {
      for (const [ratio, n, k] of cases) {
        const replayed = replayedOf(n, 3);
        const slots = selectSwapSlots(policy, replayed, ratio, 0.75, new Rng(2));
        expect(slots.length, `${policy} ${ratio} x ${n}`).toBe(k);
        expect(swapCount(ratio, n)).toBe(k);
        expect(new Set(slots).size).toBe(k);
        const valid = new Set(replayed.map((r) => r.slot));
        for (const s of slots) expect(valid.has(s)).toBe(true);
      }
      expect(selectSwapSlots(policy, [], 0.5, 0, new Rng(1))).toHaveLength(0);
    }
  });

  it('random picks every replayed sample about equally often', () => {
    const replayed = replayedOf(10, 2);
    const hits = new Map<number, number>();
    const rng = new Rng(9);
    for (let t = 0; t < 4000; t++) for (const s of selectSwapSlots('random', replayed, 0.3, 0, rng)) hits.set(s, (hits.get(s) ?? 0) + 1);
    for (const r of replayed) expect(Math.abs(hits.get(r.slot)! / 4000 - 0.3)).toBeLessThan(0.04);
  });

  it('hybrid: per-class quota by share, easy (correct, low entropy) first, confidently wrong kept', () => {
    const r = (slot: number, label: number, correct: boolean, entropy: number): ReplayedSampleInfo => ({ slot, label, correct, entropy });
    const replayed = [
      // class 0: 6 of 8 samples -> quota 3 of 4
      r(1, 0, true, 0.9), r(2, 0, true, 0.1), r(3, 0, false, 0.05), r(4, 0, false, 1.5), r(5, 0, true, 0.5), r(6, 0, false, 0.2),
      // class 1: 2 of 8 -> quota 1 of 4
      r(7, 1, false, 0.01), r(8, 1, false, 2.0),
    ];
    const slots = [...selectSwapSlots('hybrid', replayed, 0.5, 1, new Rng(1))];
    expect(slots).toEqual([2, 5, 1, 8]);

    // Wrong ones leave by descending entropy once the correct ones are gone: 3 (wrong, 0.05) stays longest.
    const all = [...selectSwapSlots('hybrid', replayed.slice(0, 6), 5 / 6, 1, new Rng(1))];
    expect(all).toEqual([2, 5, 1, 4, 6]);
    expect(all).not.toContain(3);
  });

  it('hybrid quotas add up under largest remainders', () => {
    // 3 classes of 3 samples each, k = 5: quotas 2, 2, 1 in some order.
    const replayed = replayedOf(9, 3, 4);
    for (let seed = 0; seed < 20; seed++) {
      const slots = selectSwapSlots('hybrid', replayed, 5 / 9, 1, new Rng(seed));
      const perClass = [0, 0, 0];
      for (const s of slots) perClass[replayed.find((x) => x.slot === s)!.label]!++;
      expect(perClass.reduce((a, b) => a + b)).toBe(5);
      expect([...perClass].sort()).toEqual([1, 2, 2]);
    }
  });

  it('dynamic is random before half of the epochs and hybrid from then on', () => {
    const replayed = replayedOf(40, 4, 3);
    for (let seed = 0; seed < 5; seed++) {
      expect(selectSwapSlots('dynamic', replayed, 0.5, 0.49, new Rng(seed))).toEqual(selectSwapSlots('random', replayed, 0.5, 0.49, new Rng(seed)));
      expect(selectSwapSlots('dynamic', replayed, 0.5, 0.5, new Rng(seed))).toEqual(selectSwapSlots('hybrid', replayed, 0.5, 0.5, new Rng(seed)));
    }
    expect(selectSwapSlots('hybrid', replayed, 0.5, 0, new Rng(1))).not.toEqual(selectSwapSlots('random', replayed, 0.5, 0, new Rng(1)));
  });

  it('rejects a bad ratio or policy with STRATA_ERR_BAD_OPTION', () => {
    for (const bad of [() => selectSwapSlots('random', replayedOf(4, 2), 1.5, 0, new Rng(1)), () => selectSwapSlots('lru' as never, replayedOf(4, 2), 0.5, 0, new Rng(1))]) {
      let err: unknown;
      try {
        bad();
      } catch (e) {
        err = e;
      }
      expect(isStrataError(err, 'STRATA_ERR_BAD_OPTION')).toBe(true);
    }
  });
});
