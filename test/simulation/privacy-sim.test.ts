import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { simulate, smallConfig, tmpDir } from './helpers.js';

describe('simulate with secure aggregation and DP (the round engine the daemon runs)', () => {
  it('secure aggregation: every round is unmasked from masked uploads, and the model learns as plain FedAvg does', async () => {
    const dir = tmpDir();
    try {
      const plain = await simulate(smallConfig({ clients: 8, perRound: 4, rounds: 3, dropouts: false }), `${dir}/plain`);
      const secure = await simulate(smallConfig({ clients: 8, perRound: 4, rounds: 3, dropouts: false, secureAggregation: true }), `${dir}/secure`);
      expect(secure.privacy).toEqual({ secureAggregation: true, dp: null });
      for (const r of secure.rounds) {
        expect(r.secureAggregation).toMatchObject({ parties: 4, uploads: 4, sessions: 1 });
        expect(r.secureAggregation!.quantizationBound).toBeLessThan(1e-4);
      }
      // Same seed, same clients, same updates: the models differ only by quantization.
      expect(Math.abs(secure.finalAccuracy - plain.finalAccuracy)).toBeLessThan(0.02);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('central DP in shares (distributed) under secure aggregation: epsilon per round and in total; the budget stops training', async () => {
    const dir = tmpDir();
    try {
      const r = await simulate(smallConfig({
        clients: 8, perRound: 4, rounds: 6, dropouts: false, secureAggregation: true, dp: 'central', dpNoiseMultiplier: 1, dpClip: 1, dpEpsilon: 4, dpDelta: 1e-5,
      }), dir);
      const dp = r.privacy.dp!;
      expect(dp).toMatchObject({ mode: 'central', distributed: true, noiseMultiplier: 1, clip: 1, delta: 1e-5, budget: { epsilon: 4, delta: 1e-5 } });
      expect(r.rounds.length).toBeLessThan(6);
      expect(dp.epsilon).toBeLessThanOrEqual(4);
      expect(dp.rounds).toBe(r.rounds.length);
      const eps = r.rounds.map((x) => x.privacy!.epsilon);
      for (let i = 1; i < eps.length; i++) expect(eps[i]!).toBeGreaterThan(eps[i - 1]!);
      expect(r.rounds[0]!.privacy!.epsilonRound).toBeCloseTo(eps[0]!, 10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('local DP: every client clips and noises its own update; accounted without amplification (q = 1)', async () => {
    const dir = tmpDir();
    try {
      const r = await simulate(smallConfig({ clients: 6, perRound: 3, rounds: 2, dropouts: false, dp: 'local', dpNoiseMultiplier: 0.5, dpClip: 1 }), dir);
      expect(r.privacy.dp).toMatchObject({ mode: 'local', distributed: false, q: 1, rounds: 2 });
      expect(r.rounds[1]!.privacy!.epsilon).toBeGreaterThan(r.rounds[0]!.privacy!.epsilon);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
