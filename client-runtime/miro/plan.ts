/**
 * Planning a profiling round: which candidates it tries, which of them share
 * a trial, how long each trial is, and what each candidate would cost the
 * next task at full scale (known before any trial: counted work).
 */
import type { CandidateSpace, MiroCandidate } from './candidate-space.js';
import { judgedKey, type Judged, type PresentConfig } from './decision.js';
import type { CompiledMiroOptions } from './miro-options.js';
import { keptSamples, nextTaskJoules, type NextTask } from './next-task-energy.js';

export interface RoundInput {
  options: CompiledMiroOptions;
  space: CandidateSpace;
  /** The navigator's candidates for this round, in its order. */
  selected: readonly MiroCandidate[];
  /** Position of the task the round configures (0: the first). */
  index: number;
  /** The cost model of the next task (its available stream, batch, epochs, prices). */
  next: NextTask;
  /** Whether the EM holds past samples (EM sizes can then be judged). */
  memoryHoldsSamples: boolean;
  /** The configuration in force before the round's choice. */
  present: PresentConfig;
  validationSamples: number;
}

export interface RoundPlan {
  readonly index: number;
  readonly judged: Judged;
  readonly present: PresentConfig;
  readonly next: NextTask;
  readonly validationSamples: number;
  /** Trial groups in run order: each is one trial over the largest stream buffer's slice, scored at each candidate's prefix. */
  readonly groups: readonly (readonly MiroCandidate[])[];
  /** Samples of the available stream a candidate's trial trains (a prefix of it). */
  trialSize(c: MiroCandidate): number;
  /** The next task's full-scale joules under a candidate (counted work priced by the profile). */
  joulesOf(c: MiroCandidate): number;
}

export function planRound(input: RoundInput): RoundPlan {
  const { options, next } = input;
  const judged: Judged = { memory: input.memoryHoldsSamples, swapRatio: next.swapping };
  const kept = (c: MiroCandidate): number => keptSamples(next.availableSamples, c.streamBuffer);
  // A trial trains its `dataRatio` share of the candidate's kept stream, but never fewer than `minTrialSteps` steps (nor more than the kept stream).
  const trialSize = (c: MiroCandidate): number => Math.min(kept(c), Math.max(Math.ceil(options.dataRatio * kept(c)), options.minTrialSteps * next.batch));
  const joules = new Map<string, number>();
  const joulesOf = (c: MiroCandidate): number => {
    let j = joules.get(c.key);
    if (j === undefined) joules.set(c.key, (j = nextTaskJoules(c, next)));
    return j;
  };
  return {
    index: input.index, judged, present: input.present, next, validationSamples: input.validationSamples,
    groups: trialGroups(input.space, input.selected, judged, next.epochs, trialSize, options.skipMootTrials),
    trialSize, joulesOf,
  };
}

/**
 * The trials a round runs. With one epoch a trial's stream is a prefix of
 * the task's (the first pass keeps stream order), so the navigator's
 * candidates that share an EM size and swap ratio are one trial over the
 * largest one's slice, scored at each smaller one's prefix; the other
 * stream buffers of that EM size and swap ratio below the largest cost one
 * evaluation each and are scored too. Before swapping starts (task 0) the
 * swap ratio changes nothing, so candidates differing only in it share
 * their trial; nor, with the EM still empty (before the first task), does
 * the EM size much: it only bounds how many of the task's own samples are
 * replayed, which 100 held-out samples of two classes cannot resolve, and
 * the EM size is chosen again at the next boundary. So before task 0 one
 * trial scores the stream buffers. With more epochs every candidate is its
 * own trial. With `lastLongest`, the group with the longest trial runs last:
 * that trial is the one most worth skipping when no score it could reach
 * changes the choice; otherwise groups keep the navigator's order.
 */
export function trialGroups(space: CandidateSpace, selected: readonly MiroCandidate[], judged: Judged, epochs: number,
  trialSize: (c: MiroCandidate) => number, lastLongest: boolean): MiroCandidate[][] {
  const key = (c: MiroCandidate): string => judgedKey(c, judged);
  const largest = new Map<string, number>();
  for (const c of selected) largest.set(key(c), Math.max(largest.get(key(c)) ?? 0, c.streamBuffer));
  const groups = epochs !== 1 ? selected.map((c) => [c]) : [...largest.entries()].map(([k, sb]) => {
    const group = space.candidates.filter((c) => key(c) === k && c.streamBuffer <= sb);
    // The navigator's own pick leads, so the trial memory takes its swap ratio.
    const lead = selected.find((c) => key(c) === k)!;
    return [lead, ...group.filter((c) => c.key !== lead.key)];
  });
  if (!lastLongest) return groups;
  const longest = (g: MiroCandidate[]): number => Math.max(...g.map(trialSize));
  return groups.map((g, i) => ({ g, i })).sort((a, b) => longest(a.g) - longest(b.g) || a.i - b.i).map((x) => x.g);
}
