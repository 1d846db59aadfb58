import { ProtocolError, type DeviceDp, type PrivacySettings } from '../protocol/index.js';
import { mergeDeviceDp } from './device-privacy.js';

/**
 * The least privacy a device takes part under (`strata agent
 * --require-secagg`, `--dp central|local` with `--dp-noise-multiplier` and
 * `--dp-clip`): secure aggregation; central DP of at least this noise
 * multiplier and at most this clipping norm (or local DP); or local DP,
 * which the device applies itself whatever the coordinator runs.
 */
export interface PrivacyFloor {
  secureAggregation?: boolean;
  dp?: { mode: 'local' | 'central'; noiseMultiplier?: number; clip?: number };
}

/** Null when `settings` (a coordinator's welcome) meets the floor; else the coded error the device leaves with. */
export function checkPrivacyFloor(floor: PrivacyFloor, settings: PrivacySettings | undefined): ProtocolError | null {
  const weaker = (why: string, details: Record<string, unknown>): ProtocolError =>
    new ProtocolError('STRATA_ERR_PRIVACY_FLOOR', `the coordinator runs weaker privacy than this device requires: ${why}`, details);
  if (floor.secureAggregation === true && settings?.secureAggregation !== true) {
    return weaker('no secure aggregation (--require-secagg)', { required: 'secure-aggregation' });
  }
  const dp = floor.dp;
  if (dp?.mode === 'central') {
    const mode = settings?.dp ?? 'off';
    if (mode === 'off') return weaker('no differential privacy (--dp central)', { required: 'central', runs: mode });
    const z = settings?.noiseMultiplier ?? 0;
    if (dp.noiseMultiplier !== undefined && z < dp.noiseMultiplier) {
      return weaker(`noise multiplier ${z} below ${dp.noiseMultiplier}`, { required: dp.noiseMultiplier, runs: z });
    }
    const clip = settings?.clip ?? Number.POSITIVE_INFINITY;
    if (dp.clip !== undefined && clip > dp.clip) return weaker(`clipping norm ${clip} above ${dp.clip}`, { required: dp.clip, runs: clip });
  }
  return null;
}

/** The DP a device applies to its update: what its assignment asks, with its own local-DP floor on top. */
export function effectiveDeviceDp(asked: DeviceDp | undefined, floor: PrivacyFloor | undefined): DeviceDp | undefined {
  const own = floor?.dp;
  if (own?.mode !== 'local' || own.clip === undefined || own.noiseMultiplier === undefined) return asked;
  return mergeDeviceDp(asked, { mode: 'local', clip: own.clip, noiseMultiplier: own.noiseMultiplier });
}
