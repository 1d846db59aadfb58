import type { Command } from 'commander';
import { StrataError } from '../common/strata-error.js';
import type { DifferentialPrivacyOptions } from '../privacy/differential-privacy.js';
import type { PrivacyFloor } from '../privacy/privacy-floor.js';
import type { SecureAggregationOptions } from '../secure-aggregation/compatibility.js';
import { choiceFlag, intFlag, numberFlag } from './flags.js';

/** Privacy flags, as `coordinator`, `simulate` and `agent` take them. */
export interface PrivacyFlags {
  secureAggregation?: boolean;
  secaggNeighbours?: number;
  secaggRange?: number;
  dp?: 'off' | 'central' | 'local';
  dpNoiseMultiplier?: number;
  dpClip?: number;
  dpEpsilon?: number;
  dpDelta?: number;
}

function flagError(flag: string, message: string): StrataError {
  return new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: ${message}`, { flag });
}

/** The coordinator's and the simulation's: secure aggregation, DP and its budget. */
export function addPrivacyFlags(cmd: Command): Command {
  return cmd
    .option('--secure-aggregation', 'secure aggregation (SecAgg+): the coordinator only ever holds the sum of a round\'s updates (fedavg, fedprox, fedadam, fedyogi; not median, trimmed-mean, fedbuff, --max-update-norm or --clip-norm)')
    .option('--secagg-neighbours <k>', 'secure aggregation: neighbours per agent, even (default 2 ceil(log2 n), the whole cohort below that)', intFlag('--secagg-neighbours', 2))
    .option('--secagg-range <x>', 'secure aggregation: each coordinate of a weighted update is clipped to +-x before quantization (default 1024; with --dp central the clip norm plus room for noise)', numberFlag('--secagg-range', 0, Number.MAX_SAFE_INTEGER, true))
    .option('--dp <mode>', 'differential privacy: off | central (clip, noise on the sum; in shares by the devices under --secure-aggregation) | local (each device clips and noises its update) (default off)', choiceFlag('--dp', ['off', 'central', 'local'] as const))
    .option('--dp-noise-multiplier <z>', 'DP: noise standard deviation over the clipping norm', numberFlag('--dp-noise-multiplier', 0))
    .option('--dp-clip <c>', 'DP: L2 norm each update is clipped to', numberFlag('--dp-clip', 0, Number.MAX_VALUE, true))
    .option('--dp-epsilon <e>', 'DP budget: training stops before a round that would spend past epsilon (at --dp-delta)', numberFlag('--dp-epsilon', 0, Number.MAX_VALUE, true))
    .option('--dp-delta <d>', 'DP: delta epsilon is reported at and the budget holds at (default 1e-5)', numberFlag('--dp-delta', 0, 1, true));
}

/** An agent's floor: the least privacy it takes part under. */
export function addAgentPrivacyFlags(cmd: Command): Command {
  return cmd
    .option('--require-secagg', 'leave a coordinator that does not run secure aggregation (STRATA_ERR_PRIVACY_FLOOR)')
    .option('--no-secure-aggregation', 'do not offer secure aggregation (a coordinator that runs it refuses this agent)')
    .option('--dp <mode>', 'this device\'s DP floor: central (leave a coordinator without central DP of at least --dp-noise-multiplier and at most --dp-clip) | local (clip and noise every update here, whatever the coordinator asks) | off', choiceFlag('--dp', ['off', 'central', 'local'] as const))
    .option('--dp-noise-multiplier <z>', 'DP floor: least noise multiplier', numberFlag('--dp-noise-multiplier', 0))
    .option('--dp-clip <c>', 'DP floor: largest clipping norm', numberFlag('--dp-clip', 0, Number.MAX_VALUE, true));
}

/** Secure aggregation options from the flags, or undefined when off. */
export function secureAggregationOf(f: PrivacyFlags): SecureAggregationOptions | undefined {
  if (f.secureAggregation !== true) {
    if (f.secaggNeighbours !== undefined) throw flagError('--secagg-neighbours', 'needs --secure-aggregation');
    if (f.secaggRange !== undefined) throw flagError('--secagg-range', 'needs --secure-aggregation');
    return undefined;
  }
  if (f.secaggNeighbours !== undefined && f.secaggNeighbours % 2 !== 0) throw flagError('--secagg-neighbours', `must be even (got ${f.secaggNeighbours})`);
  return { ...(f.secaggNeighbours !== undefined ? { neighbours: f.secaggNeighbours } : {}), ...(f.secaggRange !== undefined ? { range: f.secaggRange } : {}) };
}

/** DP options from the flags (for `DifferentialPrivacy`), or undefined when off. */
export function differentialPrivacyOf(f: PrivacyFlags): Omit<DifferentialPrivacyOptions, 'noise'> | undefined {
  const mode = f.dp ?? 'off';
  if (mode === 'off') {
    for (const [flag, v] of [['--dp-noise-multiplier', f.dpNoiseMultiplier], ['--dp-clip', f.dpClip], ['--dp-epsilon', f.dpEpsilon], ['--dp-delta', f.dpDelta]] as const) {
      if (v !== undefined) throw flagError(flag, 'needs --dp central or --dp local');
    }
    return undefined;
  }
  if (f.dpClip === undefined) throw flagError('--dp-clip', `--dp ${mode} needs a clipping norm`);
  if (f.dpNoiseMultiplier === undefined) throw flagError('--dp-noise-multiplier', `--dp ${mode} needs a noise multiplier`);
  const delta = f.dpDelta ?? 1e-5;
  return {
    mode, clip: f.dpClip, noiseMultiplier: f.dpNoiseMultiplier, delta,
    ...(f.dpEpsilon !== undefined ? { budget: { epsilon: f.dpEpsilon, delta } } : {}),
  };
}

/** An agent's privacy floor from its flags, or undefined. */
export function privacyFloorOf(f: { requireSecagg?: boolean; dp?: 'off' | 'central' | 'local'; dpNoiseMultiplier?: number; dpClip?: number }): PrivacyFloor | undefined {
  const mode = f.dp ?? 'off';
  if (mode === 'local' && (f.dpClip === undefined || f.dpNoiseMultiplier === undefined)) {
    throw flagError(f.dpClip === undefined ? '--dp-clip' : '--dp-noise-multiplier', '--dp local needs --dp-clip and --dp-noise-multiplier (the device noises its own updates)');
  }
  if (mode === 'off' && (f.dpClip !== undefined || f.dpNoiseMultiplier !== undefined)) throw flagError('--dp', '--dp-clip and --dp-noise-multiplier need --dp central or --dp local');
  if (f.requireSecagg !== true && mode === 'off') return undefined;
  return {
    ...(f.requireSecagg === true ? { secureAggregation: true } : {}),
    ...(mode !== 'off' ? { dp: { mode, ...(f.dpNoiseMultiplier !== undefined ? { noiseMultiplier: f.dpNoiseMultiplier } : {}), ...(f.dpClip !== undefined ? { clip: f.dpClip } : {}) } } : {}),
  };
}
