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
  /** Held-out samples `accuracy` was measured on; sets how finely accuracies can be told apart. Default: exactly. */
  readonly validationSamples?: number;
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

/** Joules within this fraction of each other count as the same cost. */
const SAME_JOULES = 0.01;

/**
 * How far below `r`'s accuracy another candidate's may be and still not be
 * known to be worse: the two accuracies are measured on `validationSamples`
 * held-out samples, each with binomial standard error sqrt(p(1-p)/n), so
 * their difference has sqrt(2) times that. 0 when the sample count is unknown.
 */
function toleranceOf(r: CandidateResult): number {
  const n = r.validationSamples ?? 0;
  const p = r.accuracy;
  return n > 0 ? Math.SQRT2 * Math.sqrt(Math.max(p * (1 - p), 1 / n) / n) : 0;
}

/** Never keep fewer than this many (when there are as many): with one, the choice is "most accurate" and energy plays no part. */
export const MIN_KEPT = 2;

/**
 * Miro's rule: keep the top `cutline` fraction of the candidates by accuracy
 * (at least `MIN_KEPT`, and any within one standard error of the last one
 * kept), then take the highest accuracy per joule among them. A round tries few candidates (3 of 9, say), and a cutline of 0.3
 * over 3 keeps one: the pick would then ignore energy altogether. Ties:
 * higher accuracy, then fewer joules, then the order given; and a larger EM
 * at the same joules wins over an accuracy the held-out set cannot tell apart.
 */
export function chooseCandidate(results: readonly CandidateResult[], cutline: number): Choice {
  if (results.length === 0) throw new StrataError('STRATA_ERR_BAD_OPTION', 'Miro: no candidate results to choose from', { option: 'results' });
  if (!(cutline > 0 && cutline <= 1)) throw new StrataError('STRATA_ERR_BAD_OPTION', `Miro: cutline must be in (0, 1], got ${cutline}`, { option: 'cutline' });
  const byAccuracy = results.map((r, i) => ({ r, i })).sort((a, b) => b.r.accuracy - a.r.accuracy || a.r.joules - b.r.joules || a.i - b.i);
  const keep = Math.min(results.length, Math.max(MIN_KEPT, Math.ceil(cutline * results.length - 1e-9)));
  // Candidates tied with the last one kept are kept too: the cut must not split accuracies the held-out set cannot tell
  // apart. Measured on n samples, an accuracy p has a binomial standard error sqrt(p(1-p)/n), and the difference of two
  // such measurements sqrt(2) times that: a candidate closer than that to the last one kept is not known to be worse.
  const lastResult = byAccuracy[keep - 1]!.r;
  const kept = byAccuracy.filter((x, k) => k < keep || x.r.accuracy >= lastResult.accuracy - toleranceOf(lastResult));
  let best = kept[0]!;
  for (const x of kept) {
    const u = utility(x.r);
    const bu = utility(best.r);
    if (u > bu || (u === bu && (x.r.accuracy > best.r.accuracy || (x.r.accuracy === best.r.accuracy && x.r.joules < best.r.joules)))) best = x;
  }
  // A larger EM costs no more energy (a step replays `replay` samples whatever its size), and the forgetting it
  // guards against grows with the tasks still to come, which a trial cannot see. So among kept candidates the
  // held-out set cannot tell from the best in accuracy, at the best's joules (within 1%), the largest EM wins.
  const top = best.r;
  for (const x of kept) {
    const same = x.r.joules <= top.joules * (1 + SAME_JOULES) && x.r.accuracy >= top.accuracy - toleranceOf(top);
    if (same && x.r.candidate.memory > best.r.candidate.memory) best = x;
  }
  return { chosen: best.r.candidate, kept: kept.map((x) => x.r.candidate.key) };
}
