import { describe, expect, it } from 'vitest';
import {
  Clipping, FedAdam, FedAvg, FedBuff, FedProx, FedYogi, MeanAccumulator, MedianAggregator, ServerEvaluation, TrimmedMeanAggregator, clipScale, deltaNorm,
} from '../../coordinator/strategies/index.js';
import { strategyFromName } from '../../cli/strategies.js';

const round = { roundId: 3, modelVersion: 2, seed: 7 };

const f32 = (...v: number[]) => Float32Array.from(v);

describe('strategies', () => {
  it('FedAvg: sample-weighted mean of deltas, streamed', () => {
    const s = new FedAvg();
    const agg = s.createAggregator(2);
    agg.add(f32(1, 2), s.updateWeight(10, 0)!);
    agg.add(f32(4, -1), s.updateWeight(30, 0)!);
    expect(agg.buffersUpdates).toBe(false);
    const mean = agg.result();
    expect(mean[0]).toBeCloseTo((10 * 1 + 30 * 4) / 40, 6);
    expect(mean[1]).toBeCloseTo((10 * 2 - 30) / 40, 6);
    expect(Array.from(s.applyAggregate(f32(1, 1), mean))).toEqual([1 + mean[0]!, 1 + mean[1]!]);
  });

  it('FedProx sends mu to clients; the server step is FedAvg', () => {
    expect(new FedProx({ mu: 0.1 }).configureRound(round)).toEqual({ fedproxMu: 0.1 });
    expect(new FedAvg().configureRound(round)).toEqual({});
  });

  it('FedAdam: one step by hand', () => {
    const s = new FedAdam({ serverLearningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    const x = s.applyAggregate(f32(0), f32(2));
    const m = 0.1 * 2;
    const v = 0.99 * 1e-6 + 0.01 * 4;
    expect(x[0]).toBeCloseTo((0.1 * m) / (Math.sqrt(v) + 1e-3), 5);
    // The moments persist and restore: a copy continues identically.
    const t = new FedAdam({ serverLearningRate: 0.1 });
    t.importState(s.exportState());
    expect(t.applyAggregate(f32(1), f32(-1))[0]).toBeCloseTo(s.applyAggregate(f32(1), f32(-1))[0]!, 6);
  });

  it('FedYogi: v moves additively by sign(v - d^2)', () => {
    const s = new FedYogi({ serverLearningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    const x = s.applyAggregate(f32(0), f32(2));
    const v0 = 1e-6;
    const v = v0 - 0.01 * 4 * Math.sign(v0 - 4);
    expect(x[0]).toBeCloseTo((0.1 * 0.2) / (Math.sqrt(v) + 1e-3), 5);
  });

  it('coordinate-wise median and trimmed mean (buffered)', () => {
    const med = new MedianAggregator(2);
    for (const d of [f32(1, 10), f32(100, 20), f32(3, -5)]) med.add(d, 1);
    expect(med.buffersUpdates).toBe(true);
    expect(Array.from(med.result())).toEqual([3, 10]);
    const even = new MedianAggregator(1);
    for (const v of [1, 2, 3, 10]) even.add(f32(v), 1);
    expect(even.result()[0]).toBe(2.5);
    const tm = new TrimmedMeanAggregator(1, 0.2);
    for (const v of [-1000, 1, 2, 3, 1000]) tm.add(f32(v), 1);
    expect(tm.result()[0]).toBeCloseTo(2, 6);
  });

  it('norm clipping scales an update down to the bound; the norm pass detects non-finite values', () => {
    expect(deltaNorm(f32(3, 4))).toBe(5);
    expect(deltaNorm(f32(4, 6), f32(1, 2))).toBe(5);
    expect(clipScale(5, 1)).toBeCloseTo(0.2);
    expect(clipScale(0.5, 1)).toBe(1);
    expect(clipScale(5, undefined)).toBe(1);
    const acc = new MeanAccumulator(2);
    acc.add(f32(3, 4), 1, clipScale(5, 1));
    expect(deltaNorm(acc.result())).toBeCloseTo(1, 6);
    expect(Number.isFinite(deltaNorm(f32(1, Number.NaN)))).toBe(false);
    expect(Number.isFinite(deltaNorm(f32(Number.NEGATIVE_INFINITY, 1)))).toBe(false);
    expect(Number.isFinite(deltaNorm(f32(3.4e38, 3.4e38)))).toBe(true);
  });

  it('FedBuff: async, staleness-weighted 1/sqrt(1+s), too stale rejected', () => {
    const s = new FedBuff({ maxStaleness: 4 });
    expect(s.mode).toBe('async');
    expect(s.updateWeight(10, 0)).toBeCloseTo(10);
    expect(s.updateWeight(10, 3)).toBeCloseTo(10 / 2);
    expect(s.updateWeight(10, 5)).toBeNull();
    const agg = s.createAggregator(1);
    agg.add(f32(1), s.updateWeight(1, 0)!);
    agg.add(f32(4), s.updateWeight(1, 3)!);
    expect(agg.result()[0]).toBeCloseTo((1 * 1 + 4 * 0.5) / 1.5, 6);
  });

  it('the CLI knows every named strategy and rejects others with a code naming the flag', () => {
    for (const name of ['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedbuff', 'median', 'trimmed-mean']) expect(strategyFromName(name).name).toBe(name);
    expect(() => strategyFromName('fedmagic')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG', details: expect.objectContaining({ flag: '--strategy' }) }));
  });

  it('Clipping and ServerEvaluation wrap any strategy and change only their step', async () => {
    const inner = new FedProx({ mu: 0.2 });
    const s = new ServerEvaluation(new Clipping(inner, 2), (w) => ({ accuracy: w[0]!, loss: 0 }));
    expect(s.name).toBe('fedprox');
    expect(s.mode).toBe('sync');
    expect(s.configureRound(round)).toEqual({ fedproxMu: 0.2 });
    expect(s.updateScale(1)).toBe(1);
    expect(s.updateScale(8)).toBeCloseTo(0.25, 9);
    expect(s.settings()).toMatchObject({ mu: 0.2, clipNorm: 2 });
    expect(await s.evaluate!(f32(0.75), { roundId: 1, modelVersion: 1 })).toEqual({ accuracy: 0.75, loss: 0 });
    expect(new Clipping(new FedAvg(), 1).evaluate).toBeUndefined();
    expect(() => new Clipping(inner, 0)).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option: 'clipNorm' }) }));
  });
});
