import { describe, expect, it } from 'vitest';
import { deltaNorm } from '../../coordinator/strategies/clipping.js';
import { privatizeUpdate } from '../../privacy/device-privacy.js';
import { GaussianNoise } from '../../privacy/gaussian-noise.js';
import { checkPrivacyFloor, effectiveDeviceDp } from '../../privacy/privacy-floor.js';

describe('device-side DP', () => {
  it('clips to the norm; local DP adds N(0, (z c)^2), a distributed share N(0, (z c)^2 / K), central none', () => {
    const delta = Float32Array.from({ length: 20_000 }, (_, i) => Math.sin(i));
    const clipOnly = privatizeUpdate(delta, { mode: 'central', clip: 1, noiseMultiplier: 2 }, GaussianNoise.seeded(1));
    expect(deltaNorm(clipOnly.delta)).toBeCloseTo(1, 5);
    expect(clipOnly.noiseStd).toBe(0);
    const std = (x: Float32Array, base: Float32Array): number => Math.sqrt(x.reduce((s, v, i) => s + (v - base[i]!) ** 2, 0) / x.length);
    const local = privatizeUpdate(delta, { mode: 'local', clip: 1, noiseMultiplier: 2 }, GaussianNoise.seeded(2));
    expect(std(local.delta, clipOnly.delta)).toBeCloseTo(2, 1);
    const share = privatizeUpdate(delta, { mode: 'central', clip: 1, noiseMultiplier: 2, noiseShares: 4 }, GaussianNoise.seeded(3));
    expect(std(share.delta, clipOnly.delta)).toBeCloseTo(1, 1);
  });

  it('the floor: secure aggregation and central DP of at least the noise and at most the clip', () => {
    expect(checkPrivacyFloor({ secureAggregation: true }, undefined)?.code).toBe('STRATA_ERR_PRIVACY_FLOOR');
    expect(checkPrivacyFloor({ secureAggregation: true }, { secureAggregation: true, dp: 'off' })).toBeNull();
    const floor = { dp: { mode: 'central' as const, noiseMultiplier: 1, clip: 0.5 } };
    expect(checkPrivacyFloor(floor, { secureAggregation: false, dp: 'off' })?.code).toBe('STRATA_ERR_PRIVACY_FLOOR');
    expect(checkPrivacyFloor(floor, { secureAggregation: false, dp: 'central', noiseMultiplier: 0.8, clip: 0.5 })?.details).toMatchObject({ required: 1, runs: 0.8 });
    expect(checkPrivacyFloor(floor, { secureAggregation: false, dp: 'central', noiseMultiplier: 1, clip: 1 })?.details).toMatchObject({ required: 0.5, runs: 1 });
    expect(checkPrivacyFloor(floor, { secureAggregation: false, dp: 'local', noiseMultiplier: 1.2, clip: 0.2 })).toBeNull();
  });

  it('a local-DP floor is applied on top of what the coordinator asks (the stronger knob wins)', () => {
    const floor = { dp: { mode: 'local' as const, noiseMultiplier: 2, clip: 0.5 } };
    expect(effectiveDeviceDp(undefined, floor)).toEqual({ mode: 'local', clip: 0.5, noiseMultiplier: 2 });
    expect(effectiveDeviceDp({ mode: 'local', clip: 1, noiseMultiplier: 3 }, floor)).toEqual({ mode: 'local', clip: 0.5, noiseMultiplier: 6 });
    expect(effectiveDeviceDp({ mode: 'central', clip: 1, noiseMultiplier: 1 }, undefined)).toEqual({ mode: 'central', clip: 1, noiseMultiplier: 1 });
  });
});
