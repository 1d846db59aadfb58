import { describe, expect, it } from 'vitest';
import { buildCandidateSpace, extremes, type MiroCandidate } from '../../client-runtime/miro/candidate-space.js';
import { chooseCandidate, type CandidateResult } from '../../client-runtime/miro/choice.js';
import { gridNavigator, randomNavigator, roundSize, weightedRandomNavigator } from '../../client-runtime/miro/navigators.js';
import { Rng } from '../../ml/rng.js';

const space = buildCandidateSpace();
const result = (c: MiroCandidate, accuracy: number, joules: number): CandidateResult => ({ candidate: c, accuracy, joules, trialJoules: 0, trialSeconds: 0 });
const cand = (memory: number, streamBuffer: number, swapRatio = 0.5): MiroCandidate => space.candidates.find((c) => c.memory === memory && c.streamBuffer === streamBuffer && c.swapRatio === swapRatio)!;

describe('the candidate space', () => {
  it('is EM size x stream buffer x swap ratio, smallest first and largest last', () => {
    expect(space.candidates).toHaveLength(5 * 3 * 2);
    expect(new Set(space.candidates.map((c) => c.key)).size).toBe(30);
    const { largest, smallest } = extremes(space);
    expect(smallest).toMatchObject({ memory: 25, streamBuffer: 0.25, swapRatio: 0.1 });
    expect(largest).toMatchObject({ memory: 400, streamBuffer: 1, swapRatio: 0.5 });
  });

  it('rejects bad dimensions naming them', () => {
    expect(() => buildCandidateSpace({ streamBuffers: [0] })).toThrow(/streamBuffers/);
    expect(() => buildCandidateSpace({ memories: [] })).toThrow(/memories/);
  });
});

describe('navigators', () => {
  it('grid covers every candidate', () => {
    const picked = gridNavigator(space).select(new Rng(1));
    expect(new Set(picked.map((c) => c.key))).toEqual(new Set(space.candidates.map((c) => c.key)));
  });

  it('random covers its fraction, distinct candidates, at least 3', () => {
    const nav = randomNavigator(space, { fraction: 0.2 });
    const seen = new Set<string>();
    for (let round = 0; round < 30; round++) {
      const picked = nav.select(new Rng(round));
      expect(picked).toHaveLength(6);
      expect(new Set(picked.map((c) => c.key)).size).toBe(6);
      for (const c of picked) seen.add(c.key);
    }
    expect(seen.size).toBe(30); // over rounds it reaches everywhere
    expect(roundSize(5, { fraction: 0.2 })).toBe(3);
    expect(roundSize(2, { fraction: 0.2 })).toBe(2);
  });

  it('weighted-random shifts probability away from low-accuracy and low-utility regions', () => {
    // Synthetic truth: EM 25 is inaccurate (low accuracy); stream buffer 1 is no more accurate than 0.5 at twice the joules (low utility).
    const truth = (c: MiroCandidate): CandidateResult => result(c, c.memory === 25 ? 0.3 : 0.8 + c.memory / 4000 + Math.min(c.streamBuffer, 0.5) / 50, 200 * c.streamBuffer);
    const countPicks = (makeNav: () => ReturnType<typeof weightedRandomNavigator> | ReturnType<typeof randomNavigator>): { em25: number; sb1: number; total: number } => {
      const counts = { em25: 0, sb1: 0, total: 0 };
      for (let run = 0; run < 40; run++) {
        const nav = makeNav();
        const rng = new Rng(run + 100);
        for (let round = 0; round < 5; round++) {
          const picked = nav.select(rng);
          if (round > 0) {
            counts.total += picked.length;
            counts.em25 += picked.filter((c) => c.memory === 25).length;
            counts.sb1 += picked.filter((c) => c.streamBuffer === 1).length;
          }
          const results = picked.map(truth);
          nav.observe(results, chooseCandidate(results, 0.3).chosen);
        }
      }
      return counts;
    };
    const weighted = countPicks(() => weightedRandomNavigator(space, { fraction: 0.2 }));
    const uniform = countPicks(() => randomNavigator(space, { fraction: 0.2 }));
    // Uniform picks each EM size 1/5 and each stream buffer 1/3 of the time.
    expect(uniform.em25 / uniform.total).toBeGreaterThan(0.15);
    expect(weighted.em25 / weighted.total).toBeLessThan(0.5 * (uniform.em25 / uniform.total));
    expect(weighted.sb1 / weighted.total).toBeLessThan(0.85 * (uniform.sb1 / uniform.total));
    // And the weights say so directly.
    const nav = weightedRandomNavigator(space);
    const first = nav.select(new Rng(3));
    const res = first.map(truth);
    nav.observe(res, chooseCandidate(res, 0.3).chosen);
    const w = nav.weights();
    const wOf = (c: MiroCandidate): number => w.get(c.key)!;
    expect(Math.max(...space.candidates.filter((c) => c.memory === 25).map(wOf))).toBeLessThanOrEqual(Math.max(...space.candidates.filter((c) => c.memory === 400).map(wOf)));
  });

  it('weighted-random always re-tries the incumbent in later rounds', () => {
    const nav = weightedRandomNavigator(space);
    const rng = new Rng(9);
    const first = nav.select(rng);
    const results = first.map((c, i) => result(c, 0.5 + i / 100, 10));
    const choice = chooseCandidate(results, 0.3);
    nav.observe(results, choice.chosen);
    const second = nav.select(rng);
    expect(second[0]!.key).toBe(choice.chosen.key);
    expect(second.length).toBeGreaterThanOrEqual(2);
  });
});

describe('the choice rule', () => {
  it('keeps the top cutline fraction by accuracy and takes the best accuracy per joule among them', () => {
    const results = [
      result(cand(400, 1), 0.90, 200), // most accurate, expensive: 4.5e-3
      result(cand(200, 0.5), 0.88, 100), // 8.8e-3
      result(cand(100, 0.25), 0.86, 50), // 17.2e-3: best value above the cut
      result(cand(25, 0.25), 0.60, 20), // 30e-3: best value overall but below the cut
      result(cand(50, 0.25), 0.70, 40),
      result(cand(25, 1), 0.65, 200),
      result(cand(50, 1), 0.72, 200),
      result(cand(100, 1), 0.80, 200),
      result(cand(200, 1), 0.85, 200),
      result(cand(400, 0.5), 0.89, 100),
    ];
    const c = chooseCandidate(results, 0.3); // top 3 by accuracy: 0.90, 0.89, 0.88
    expect(c.kept).toEqual([cand(400, 1).key, cand(400, 0.5).key, cand(200, 0.5).key]);
    expect(c.chosen.key).toBe(cand(400, 0.5).key); // 0.89 / 100 J beats 0.88 / 100 J and 0.90 / 200 J
    expect(chooseCandidate(results, 0.5).chosen.key).toBe(cand(100, 0.25).key);
    expect(chooseCandidate(results, 1).chosen.key).toBe(cand(25, 0.25).key);
    // At least two kept, or the pick is "most accurate" and energy plays no part: 0.89 / 100 J beats 0.90 / 200 J.
    expect(chooseCandidate(results, 0.01).kept).toEqual([cand(400, 1).key, cand(400, 0.5).key]);
    expect(chooseCandidate(results, 0.01).chosen.key).toBe(cand(400, 0.5).key);
    expect(chooseCandidate([results[0]!], 0.01).chosen.key).toBe(cand(400, 1).key);
  });

  it('keeps candidates the held-out set cannot tell apart from the last one kept', () => {
    const results = [result(cand(400, 1), 0.9, 200), result(cand(400, 0.5), 0.89, 100), result(cand(100, 0.25), 0.875, 50), result(cand(25, 0.25), 0.7, 10)];
    // Exact: top 2 (0.90, 0.89). On 500 held-out samples, 0.875 is within sqrt(2) x sqrt(0.89 x 0.11 / 500) ~= 0.020 of 0.89.
    expect(chooseCandidate(results, 0.3).chosen.key).toBe(cand(400, 0.5).key);
    const measured = results.map((r) => ({ ...r, validationSamples: 500 }));
    const c = chooseCandidate(measured, 0.3);
    expect(c.kept).toEqual([cand(400, 1).key, cand(400, 0.5).key, cand(100, 0.25).key]);
    expect(c.chosen.key).toBe(cand(100, 0.25).key);
    // On 5000 samples (tolerance ~= 0.006) the gap is real: 0.875 is cut.
    expect(chooseCandidate(results.map((r) => ({ ...r, validationSamples: 5000 })), 0.3).kept).toHaveLength(2);
  });

  it('does not cut between equal accuracies, and prefers fewer joules among equals', () => {
    const results = [result(cand(400, 1), 0.9, 200), result(cand(400, 0.25), 0.9, 50), result(cand(25, 0.25), 0.5, 10)];
    const c = chooseCandidate(results, 0.3);
    expect(c.kept).toHaveLength(2);
    expect(c.chosen.key).toBe(cand(400, 0.25).key);
  });

  it('takes the larger EM at the same joules when the held-out set cannot tell their accuracies apart', () => {
    const results = [result(cand(25, 0.25), 0.865, 40), result(cand(100, 0.25), 0.85, 40), result(cand(400, 0.25), 0.70, 40), result(cand(100, 1), 0.88, 160)];
    // Exactly measured, 0.865 / 40 J is the best value.
    expect(chooseCandidate(results, 0.5).chosen.key).toBe(cand(25, 0.25).key);
    // On 200 held-out samples 0.85 is within sqrt(2) x sqrt(0.865 x 0.135 / 200) ~= 0.034 of 0.865: em100 at the same joules wins.
    const measured = results.map((r) => ({ ...r, validationSamples: 200 }));
    expect(chooseCandidate(measured, 0.5).chosen.key).toBe(cand(100, 0.25).key);
    // On 5000 (tolerance ~= 0.007) the gap is real; and a larger EM that costs more is not taken for free.
    expect(chooseCandidate(results.map((r) => ({ ...r, validationSamples: 5000 })), 0.5).chosen.key).toBe(cand(25, 0.25).key);
    const dearer = [result(cand(25, 0.25), 0.865, 40), result(cand(100, 0.25), 0.86, 44)].map((r) => ({ ...r, validationSamples: 200 }));
    expect(chooseCandidate(dearer, 1).chosen.key).toBe(cand(25, 0.25).key);
  });

  it('rejects an empty list and a bad cutline', () => {
    expect(() => chooseCandidate([], 0.3)).toThrow(/no candidate/);
    expect(() => chooseCandidate([result(cand(25, 1), 1, 1)], 0)).toThrow(/cutline/);
  });
});
