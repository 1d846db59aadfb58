import type { Command } from 'commander';
import { MIRO_SPACE_DEFAULTS } from '../client-runtime/miro/candidate-space.js';
import { MIRO_DEFAULTS, type MiroOptions } from '../client-runtime/miro/miro-plugin.js';
import { NAVIGATORS, type NavigatorName } from '../client-runtime/miro/navigators.js';
import { badFlag, choiceFlag, intFlag, numberFlag } from './flags.js';

/** Miro's flags, as every command that runs it (`cl`, `agent`, `simulate`) takes them. */
export interface MiroFlags {
  profileFromTask?: number; profileDataRatio?: number; navigator?: NavigatorName; navigatorFraction?: number; cutline?: number;
  miroMemories?: number[]; miroStreamBuffers?: number[]; miroSwapRatios?: number[]; miroValidation?: number; minTrialSteps?: number;
  profileEvery?: number; profilingBudget?: number; skipMootTrials?: boolean;
}

export function listFlag(flag: string, ok: (n: number) => boolean, expected: string): (value: string) => number[] {
  return (value: string) => {
    const parts = value.split(',').map((x) => x.trim());
    const nums = parts.map(Number);
    if (parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n) || !ok(n))) throw badFlag(flag, value, `a comma-separated list of ${expected}`);
    return nums;
  };
}

export function addMiroFlags(cmd: Command): Command {
  return cmd
    .option('--profile-from-task <n>', `Miro: first task (0-based) profiled before; earlier tasks use the flags (default ${MIRO_DEFAULTS.profileFromTask})`, intFlag('--profile-from-task', 0, 254))
    .option('--profile-data-ratio <r>', `Miro: share of the next task's stream buffer and of the EM a trial uses (default ${MIRO_DEFAULTS.dataRatio})`, numberFlag('--profile-data-ratio', 0, 1, true))
    .option('--navigator <name>', `Miro: ${NAVIGATORS.join(' | ')} (default ${MIRO_DEFAULTS.navigator})`, choiceFlag('--navigator', NAVIGATORS))
    .option('--navigator-fraction <f>', `Miro: share of the candidates a random round tries, at least 3 (default ${MIRO_DEFAULTS.navigatorFraction})`, numberFlag('--navigator-fraction', 0, 1, true))
    .option('--cutline <f>', `Miro: top fraction by accuracy kept before the accuracy-per-joule pick (default ${MIRO_DEFAULTS.cutline})`, numberFlag('--cutline', 0, 1, true))
    .option('--miro-memories <list>', `Miro: candidate EM sizes (default ${MIRO_SPACE_DEFAULTS.memories.join(',')})`, listFlag('--miro-memories', (n) => Number.isInteger(n) && n >= 1, 'integers >= 1'))
    .option('--miro-stream-buffers <list>', `Miro: candidate stream-buffer fractions (default ${MIRO_SPACE_DEFAULTS.streamBuffers.join(',')})`, listFlag('--miro-stream-buffers', (n) => n > 0 && n <= 1, 'fractions in (0, 1]'))
    .option('--miro-swap-ratios <list>', `Miro: candidate swap ratios (default ${MIRO_SPACE_DEFAULTS.swapRatios.join(',')})`, listFlag('--miro-swap-ratios', (n) => n >= 0 && n <= 1, 'fractions in [0, 1]'))
    .option('--miro-validation <n>', `Miro: held-out samples per task the trials are scored on (default ${MIRO_DEFAULTS.validationPerTask})`, intFlag('--miro-validation', 1))
    .option('--min-trial-steps <n>', `Miro: fewest training steps a trial runs, past the new task's first transient (default ${MIRO_DEFAULTS.minTrialSteps})`, intFlag('--min-trial-steps', 1))
    .option('--profile-every <n>', `Miro: at most one profiled boundary in this many (default ${MIRO_DEFAULTS.profileEvery})`, intFlag('--profile-every', 1))
    .option('--profiling-budget <f>', `Miro: share of the run's energy profiling may take; 1 profiles every boundary (default ${MIRO_DEFAULTS.profilingBudget})`, numberFlag('--profiling-budget', 0, 1, true))
    .option('--no-skip-moot-trials', "Miro: run the round's last trial even when no accuracy it could reach would change the choice");
}

/** Miro's options from its flags (unset ones keep Miro's defaults). */
export function miroOptionsOf(f: MiroFlags): MiroOptions {
  const o: MiroOptions = {
    profileFromTask: f.profileFromTask, dataRatio: f.profileDataRatio, navigator: f.navigator, navigatorFraction: f.navigatorFraction,
    cutline: f.cutline, memories: f.miroMemories, streamBuffers: f.miroStreamBuffers, swapRatios: f.miroSwapRatios,
    validationPerTask: f.miroValidation, minTrialSteps: f.minTrialSteps, profileEvery: f.profileEvery, profilingBudget: f.profilingBudget,
    skipMootTrials: f.skipMootTrials,
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as MiroOptions;
}
