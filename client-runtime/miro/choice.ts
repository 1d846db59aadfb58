import { StrataError } from '../../common/strata-error.js';
import type { MiroCandidate } from './candidate-space.js';

/** What one profiling trial found out about a candidate. */
export interface CandidateResult {
  readonly candidate: MiroCandidate;
  /** Accuracy on the held-out samples of every task seen after the trial. */
  readonly accuracy: number;
  /** Estimated joules of training the next task under this candidate, at full scale (device model). */
  readonly joules: number;
  /** What the trial itself cost on the device (profiling energy), joules. */
  readonly trialJoules: number;
  /** Device seconds of the trial. */
  readonly trialSeconds: number;
}

export interface Choice {
  readonly chosen: MiroCandidate;
  /** Keys of the candidates above the cutline (the top fraction by accuracy). */
  readonly kept: readonly string[];
}

/** Accuracy per joule (cost-effectiveness) of a result. */
export function utility(r: Pick<CandidateResult, 'accuracy' | 'joules'>): number {
  return r.joules > 0 ? r.accuracy / r.joules : 0;
}

/**
 * Miro's rule: keep the top `cutline` fraction of the candidates by accuracy
 * (at least one), then take the highest accuracy per joule among them. Ties:
 * higher accuracy, then fewer joules, then the order given.
 */
export function chooseCandidate(results: readonly CandidateResult[], cutline: number): Choice {
  if (results.length === 0) throw new StrataError('STRATA_ERR_BAD_OPTION', 'Miro: no candidate results to choose from', { option: 'results' });
  if (!(cutline > 0 && cutline <= 1)) throw new StrataError('STRATA_ERR_BAD_OPTION', `Miro: cutline must be in (0, 1], got ${cutline}`, { option: 'cutline' });
  const byAccuracy = results.map((r, i) => ({ r, i })).sort((a, b) => b.r.accuracy - a.r.accuracy || a.r.joules - b.r.joules || a.i - b.i);
  const keep = Math.max(1, Math.ceil(cutline * results.length - 1e-9));
  // Candidates tied with the last one kept are kept too: the cut must not split equal accuracies.
  const last = byAccuracy[keep - 1]!.r.accuracy;
  const kept = byAccuracy.filter((x, k) => k < keep || x.r.accuracy === last);
  let best = kept[0]!;
  for (const x of kept) {
    const u = utility(x.r);
    const bu = utility(best.r);
    if (u > bu || (u === bu && (x.r.accuracy > best.r.accuracy || (x.r.accuracy === best.r.accuracy && x.r.joules < best.r.joules)))) best = x;
  }
  return { chosen: best.r.candidate, kept: kept.map((x) => x.r.candidate.key) };
}
