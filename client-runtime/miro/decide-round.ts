/**
 * Deciding a profiling round from its trials: Miro's rule over one stand-in
 * per configuration the trials can tell apart (see decision.ts), with a
 * moot trial's candidates at any accuracy (0 here: by
 * `scoreCanChangeChoice`, every accuracy gives the same choice).
 */
import type { MiroCandidate } from './candidate-space.js';
import { utility, type CandidateResult } from './choice.js';
import { decide } from './decision.js';
import type { SkippedCandidate } from './miro-report.js';
import type { RoundPlan } from './plan.js';
import { resultsOf, type TrialsOutcome } from './trials.js';

export interface RoundDecision {
  readonly chosen: MiroCandidate;
  /** The scored candidates, as Miro's rule saw them. */
  readonly results: readonly CandidateResult[];
  /** Keys above the cutline. */
  readonly kept: ReadonlySet<string>;
  readonly skipped: readonly SkippedCandidate[];
  /** How far the choice's accuracy per joule is above the best other kept one's, relative to it. */
  readonly margin: number;
}

export function decideRound(plan: RoundPlan, outcome: TrialsOutcome, cutline: number): RoundDecision {
  const results = resultsOf(plan, outcome.scores);
  const moot = outcome.moot?.candidates ?? [];
  const choice = decide([...results, ...moot.map((x) => ({ ...x, accuracy: 0 }))], plan.judged, plan.present, cutline);
  const c = choice.chosen;
  const skipped: SkippedCandidate[] = moot.map(({ candidate: x, joules }) => ({
    key: x.key, memory: x.memory, streamBuffer: x.streamBuffer, swapRatio: x.swapRatio, joules, stepsSaved: outcome.moot!.stepsSaved, chosen: x.key === c.key,
  }));
  const kept = new Set(choice.kept);
  // Candidates that shared the chosen one's trial and estimate (before task 0, the EM sizes) are the same choice, not a runner-up.
  const chosenResult = results.find((r) => r.candidate.key === c.key);
  const chosenUtility = chosenResult === undefined ? 0 : utility(chosenResult);
  const others = results
    .filter((r) => kept.has(r.candidate.key) && !(r.accuracy === chosenResult?.accuracy && r.joules === chosenResult.joules))
    .map((r) => utility(r));
  const margin = others.length === 0 || chosenUtility <= 0 ? 0 : (chosenUtility - Math.max(...others)) / chosenUtility;
  return { chosen: c, results, kept, skipped, margin };
}
