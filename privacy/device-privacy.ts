import type { DeviceDp } from '../protocol/index.js';
import { deltaNorm } from '../coordinator/strategies/clipping.js';
import { GaussianNoise, type NormalSource } from './gaussian-noise.js';

/** What `privatizeUpdate` did. */
export interface PrivatizedUpdate {
  delta: Float32Array;
  /** L2 norm before clipping. */
  norm: number;
  /** Clipping factor (1: within the norm). */
  scale: number;
  /** Standard deviation of the noise added to each coordinate (0: none). */
  noiseStd: number;
}

/** The noise standard deviation a device adds under `dp`: the whole of it (local), a share of the central noise (distributed), or none (central on the server). */
export function deviceNoiseStd(dp: DeviceDp): number {
  if (dp.mode === 'local') return dp.noiseMultiplier * dp.clip;
  if (dp.noiseShares !== undefined) return (dp.noiseMultiplier * dp.clip) / Math.sqrt(dp.noiseShares);
  return 0;
}

/**
 * A device's side of differential privacy, on its update before it leaves
 * (and before masking): clip it to L2 norm `clip`, then add Gaussian noise
 * — all of it for local DP (each update is itself (epsilon, delta)-DP, as
 * Flower's LocalDpMod), a 1/noiseShares share of the central noise under
 * secure aggregation (distributed DP: the sum carries N(0, (z clip)^2) and
 * no party sees the noise-free sum), none for central DP on the server.
 * Applied once per trained update: a resent update is not noised again.
 */
export function privatizeUpdate(delta: Float32Array, dp: DeviceDp, noise: NormalSource = new GaussianNoise()): PrivatizedUpdate {
  const norm = deltaNorm(delta);
  const scale = norm > dp.clip ? dp.clip / norm : 1;
  const out = new Float32Array(delta.length);
  const std = deviceNoiseStd(dp);
  for (let i = 0; i < delta.length; i++) out[i] = delta[i]! * scale + (std > 0 ? std * noise.next() : 0);
  return { delta: out, norm, scale, noiseStd: std };
}

/** Applies a device's own floor of local DP on top of what the coordinator asked (the stronger of the two wins per knob). */
export function mergeDeviceDp(asked: DeviceDp | undefined, own: DeviceDp | undefined): DeviceDp | undefined {
  if (own === undefined) return asked;
  if (asked === undefined) return own;
  if (asked.mode === 'local' || own.mode === 'local') {
    const clip = Math.min(asked.clip, own.clip);
    const local = asked.mode === 'local' ? asked.noiseMultiplier * asked.clip : 0;
    const mine = own.mode === 'local' ? own.noiseMultiplier * own.clip : 0;
    return { mode: 'local', clip, noiseMultiplier: Math.max(local, mine) / clip };
  }
  return { ...asked, clip: Math.min(asked.clip, own.clip) };
}
