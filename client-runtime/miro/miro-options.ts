import { StrataError } from '../../common/strata-error.js';
import { buildCandidateSpace, type CandidateSpaceOptions } from './candidate-space.js';
import { NAVIGATORS, type NavigatorName } from './navigators.js';

export interface MiroOptions extends CandidateSpaceOptions {
  /**
   * First task index profiled before (earlier tasks run with the defaults).
   * Default 0: before every task, the first included. The paper's code starts
   * later; here the first task's stream buffer is a fifth of a split-MNIST
   * run's energy, too much to leave at a default. Trials before task 0 score
   * the new task alone, so they choose the stream buffer; the EM size is
   * chosen again at the next boundary (a grown EM is filled from the store).
   */
  profileFromTask?: number;
  /** Fraction of the next task's stream buffer a trial trains on. Default 0.05. */
  dataRatio?: number;
  /**
   * The fewest training steps a trial runs, whatever `dataRatio` gives.
   * A trial's first steps on a new task are a transient (the new classes'
   * outputs are still being learned: seen-task accuracy after 15 steps was
   * 0.80 and after 30 steps 0.89 in one split-MNIST trial), so trials shorter
   * than this judge how far the transient got, not the candidate: a smaller
   * stream buffer's trial would lose for being short. Default 30.
   */
  minTrialSteps?: number;
  /** Default `weighted-random`. */
  navigator?: NavigatorName;
  /** Share of the candidates a random / weighted-random round tries. Default 0.2 (at least 3). */
  navigatorFraction?: number;
  /** Top fraction by accuracy kept before the accuracy-per-joule pick. Default 0.3. */
  cutline?: number;
  /** Held-out samples per task (the tail of its stream, never trained on) the trials are scored on. Default 100. */
  validationPerTask?: number;
  /**
   * Profiling cadence: at most one profiled boundary in this many (from
   * `profileFromTask` on). Default 1: every boundary may be profiled (Miro's
   * rule), as far as `profilingBudget` allows.
   */
  profileEvery?: number;
  /**
   * Share of the run's energy profiling may take. After the first profiled
   * boundary (and the first one with past tasks, where the EM size is first
   * judged), a boundary is profiled only when the profiling energy so far
   * plus the last round's stays within this share of the run's energy so far
   * plus that round and the last task's. A trial round costs about as much as
   * a fifth of a cheap task, so profiling every boundary of a short run can
   * cost more than a better choice saves. Default 0.1; 1 profiles every
   * boundary.
   */
  profilingBudget?: number;
  /**
   * Keep the chosen candidate's trial training (one epoch only): its trial
   * trained the first `dataRatio` share of the next task's kept stream under
   * that very configuration, so the main run continues from the trial's
   * weights and does not train those samples again (their energy is counted
   * once, as profiling). Default true.
   */
  reuseChosenTrial?: boolean;
  /**
   * Skip the round's last trial segment when it is moot: with every other
   * candidate scored, each accuracy it could reach (k of the n held-out
   * samples right, k = 0..n) gives the same choice under the cutline and
   * accuracy-per-joule rule, so running it would spend energy and decide
   * nothing. Typically the largest stream buffer's extension: it costs 2-4x
   * the energy of the smaller ones, so it wins only if it keeps a cheaper
   * candidate out of the cutline, which it cannot when the cheaper ones
   * already tie at the top. The round's choice is the one the trial would
   * have led to (the estimates are counted work, known before any trial;
   * the check is arithmetic on them, not device work). What carries
   * over is not quite the same: the navigator learns only from the trials
   * that ran, so later rounds may sample other candidates. Off, the round
   * runs its groups in the navigator's order, as before. Default true.
   */
  skipMootTrials?: boolean;
}

export interface CompiledMiroOptions {
  readonly profileFromTask: number;
  readonly dataRatio: number;
  readonly minTrialSteps: number;
  readonly navigator: NavigatorName;
  readonly navigatorFraction: number;
  readonly cutline: number;
  readonly validationPerTask: number;
  readonly profileEvery: number;
  readonly profilingBudget: number;
  readonly reuseChosenTrial: boolean;
  readonly skipMootTrials: boolean;
  readonly memories: readonly number[];
  readonly streamBuffers: readonly number[];
  readonly swapRatios: readonly number[];
}

export const MIRO_DEFAULTS = Object.freeze({
  profileFromTask: 0, dataRatio: 0.05, minTrialSteps: 30, navigator: 'weighted-random' as NavigatorName, navigatorFraction: 0.2, cutline: 0.3, validationPerTask: 100,
  profileEvery: 1, profilingBudget: 0.1, reuseChosenTrial: true, skipMootTrials: true,
});

function bad(option: string, why: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `Miro option '${option}' ${why} (got ${JSON.stringify(value)})`, { option, value });
}

export function compileMiroOptions(options: MiroOptions = {}): CompiledMiroOptions {
  const d = MIRO_DEFAULTS;
  const o = { ...d, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<MiroOptions>;
  if (!Number.isInteger(o.profileFromTask) || o.profileFromTask < 0) throw bad('profileFromTask', 'must be an integer >= 0', o.profileFromTask);
  if (!(o.dataRatio > 0 && o.dataRatio <= 1)) throw bad('dataRatio', 'must be in (0, 1]', o.dataRatio);
  if (!Number.isInteger(o.minTrialSteps) || o.minTrialSteps < 1) throw bad('minTrialSteps', 'must be an integer >= 1', o.minTrialSteps);
  if (!NAVIGATORS.includes(o.navigator)) throw bad('navigator', `must be one of ${NAVIGATORS.join(', ')}`, o.navigator);
  if (!(o.navigatorFraction > 0 && o.navigatorFraction <= 1)) throw bad('navigatorFraction', 'must be in (0, 1]', o.navigatorFraction);
  if (!(o.cutline > 0 && o.cutline <= 1)) throw bad('cutline', 'must be in (0, 1]', o.cutline);
  if (!Number.isInteger(o.validationPerTask) || o.validationPerTask < 1) throw bad('validationPerTask', 'must be an integer >= 1', o.validationPerTask);
  if (!Number.isInteger(o.profileEvery) || o.profileEvery < 1) throw bad('profileEvery', 'must be an integer >= 1', o.profileEvery);
  if (!(o.profilingBudget > 0 && o.profilingBudget <= 1)) throw bad('profilingBudget', 'must be a fraction in (0, 1]', o.profilingBudget);
  if (typeof o.reuseChosenTrial !== 'boolean') throw bad('reuseChosenTrial', 'must be a boolean', o.reuseChosenTrial);
  if (typeof o.skipMootTrials !== 'boolean') throw bad('skipMootTrials', 'must be a boolean', o.skipMootTrials);
  const space = buildCandidateSpace(options);
  return Object.freeze({
    profileEvery: o.profileEvery, profilingBudget: o.profilingBudget, reuseChosenTrial: o.reuseChosenTrial, skipMootTrials: o.skipMootTrials,
    profileFromTask: o.profileFromTask, dataRatio: o.dataRatio, minTrialSteps: o.minTrialSteps, navigator: o.navigator, navigatorFraction: o.navigatorFraction,
    cutline: o.cutline, validationPerTask: o.validationPerTask,
    memories: space.memories, streamBuffers: space.streamBuffers, swapRatios: space.swapRatios,
  });
}

/** One candidate as the report shows it. */
