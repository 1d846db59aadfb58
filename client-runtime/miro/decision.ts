/**
 * What a profiling round's trial results decide, and whether a trial still
 * to run could change that decision.
 *
 * Trials judge only what they can tell apart: before task 0 the EM is empty,
 * so EM sizes score the same; before swapping starts, so do swap ratios. One
 * stand-in per distinct configuration (the one nearest the device's present
 * value) enters Miro's rule, so the cutline counts configurations, not copies.
 */
import type { MiroCandidate } from './candidate-space.js';
import { chooseCandidate, type CandidateResult, type Choice } from './choice.js';

/** Which candidate dimensions a round's trials can tell apart: EM sizes once the EM holds past samples, swap ratios once swapping runs. */
export interface Judged {
  readonly memory: boolean;
  readonly swapRatio: boolean;
}

/** The configuration the device runs before the round's choice. */
export interface PresentConfig {
  readonly memory: number;
  readonly swapRatio: number;
}

/** A candidate's EM size and swap ratio as far as trials can judge them (`*` where they cannot): equal keys share a trial. */
export function judgedKey(c: MiroCandidate, judged: Judged): string {
  return `${judged.memory ? c.memory : '*'}/${judged.swapRatio ? c.swapRatio : '*'}`;
}

/** One result per configuration the trials can tell apart: the candidate nearest the present one stands for the others. */
export function standIns(results: readonly CandidateResult[], judged: Judged, present: PresentConfig): CandidateResult[] {
  const distance = (r: CandidateResult): number => (judged.memory ? 0 : Math.abs(Math.log(r.candidate.memory / present.memory)))
    + (judged.swapRatio ? 0 : Math.abs(r.candidate.swapRatio - present.swapRatio));
  const nearest = new Map<string, CandidateResult>();
  for (const r of results) {
    const k = `${judgedKey(r.candidate, judged)}/${r.candidate.streamBuffer}`;
    const n = nearest.get(k);
    if (n === undefined || distance(r) < distance(n)) nearest.set(k, r);
  }
  return [...nearest.values()];
}

/** The round's choice: Miro's rule (`chooseCandidate`) over the stand-ins. */
export function decide(results: readonly CandidateResult[], judged: Judged, present: PresentConfig, cutline: number): Choice {
  return chooseCandidate(standIns(results, judged, present), cutline);
}

/** Candidates whose accuracy is not known yet; they share one score (one trial prefix). */
export interface PendingScore {
  /** Each candidate with its full-scale joules (known before any trial: a device-model estimate). */
  readonly candidates: readonly Omit<CandidateResult, 'accuracy'>[];
}

/**
 * Whether the accuracy a pending trial reaches could change the round's
 * choice, everything else being known. An accuracy is a count of correct
 * answers over `validationSamples` held-out samples, so every value it can
 * take (k / n, k = 0..n) is tried against `known`: when each gives the same
 * choice, the trial is moot and its energy can be saved. The choice is then
 * the one `decide` makes with the moot candidates at any of those values.
 */
export function scoreCanChangeChoice(known: readonly CandidateResult[], pending: PendingScore, validationSamples: number,
  judged: Judged, present: PresentConfig, cutline: number): boolean {
  const n = validationSamples;
  if (!(Number.isInteger(n) && n > 0) || pending.candidates.length === 0) return true;
  let first: string | undefined;
  for (let k = 0; k <= n; k++) {
    const accuracy = k / n;
    const all = [...known, ...pending.candidates.map((c) => ({ ...c, accuracy }))];
    const chosen = decide(all, judged, present, cutline).chosen.key;
    if (first === undefined) first = chosen;
    else if (chosen !== first) return true;
  }
  return false;
}
