import { StrataError } from '../../common/strata-error.js';
import type { Rng } from '../../ml/rng.js';
import type { CandidateSpace, MiroCandidate } from './candidate-space.js';
import { utility, type CandidateResult } from './choice.js';

export type NavigatorName = 'grid' | 'random' | 'weighted-random';
export const NAVIGATORS: readonly NavigatorName[] = ['grid', 'random', 'weighted-random'];

/** Which candidates a profiling round (one task boundary) evaluates. */
export interface Navigator {
  readonly name: NavigatorName;
  /** The candidates to try this round, in order. */
  select(rng: Rng): MiroCandidate[];
  /** What the round found (and chose), for later rounds. */
  observe(results: readonly CandidateResult[], chosen: MiroCandidate): void;
  /** What it learned so far (JSON), for a device that carries it to its next round in another process; none when it learns nothing. */
  exportState?(): NavigatorState;
  importState?(state: NavigatorState): void;
}

/** A navigator's learned state: candidate scores and the incumbent. */
export interface NavigatorState {
  scores: [string, number][];
  incumbent: string | null;
}

export interface NavigatorOptions {
  /** Fraction of the space a `random` / `weighted-random` round tries. Default 0.2. */
  fraction?: number;
  /** ...but at least this many (or the whole space when smaller). Default 3: fewer leaves the cutline nothing to cut. */
  minCandidates?: number;
}

/** How many candidates a sampling navigator tries per round. */
export function roundSize(spaceSize: number, options: NavigatorOptions = {}): number {
  const fraction = options.fraction ?? 0.2;
  if (!(fraction > 0 && fraction <= 1)) throw new StrataError('STRATA_ERR_BAD_OPTION', `navigator fraction must be in (0, 1], got ${fraction}`, { option: 'fraction' });
  const min = options.minCandidates ?? 3;
  return Math.min(spaceSize, Math.max(min, Math.ceil(fraction * spaceSize - 1e-9)));
}

/** `grid`: every candidate, every round. */
export function gridNavigator(space: CandidateSpace): Navigator {
  return { name: 'grid', select: () => [...space.candidates], observe: () => undefined };
}

/** `random`: a fresh uniform sample of `fraction` of the space each round. */
export function randomNavigator(space: CandidateSpace, options: NavigatorOptions = {}): Navigator {
  const k = roundSize(space.candidates.length, options);
  return {
    name: 'random',
    select: (rng) => rng.shuffle([...space.candidates]).slice(0, k),
    observe: () => undefined,
  };
}

/** Rank percentiles in [0, 1] (1 = best) of `values`; ties share their mean rank. */
function rankScores(values: readonly number[]): number[] {
  const n = values.length;
  if (n === 1) return [1];
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(n).fill(0);
  for (let a = 0; a < n;) {
    let b = a;
    while (b + 1 < n && order[b + 1]!.v === order[a]!.v) b++;
    const r = (a + b) / 2 / (n - 1);
    for (let k = a; k <= b; k++) out[order[k]!.i] = r;
    a = b + 1;
  }
  return out;
}

/**
 * `weighted-random`: the first round is a uniform sample; later rounds always
 * re-try the incumbent (the last choice) and sample the rest with weights
 * that shift probability away from low-accuracy and low-utility regions.
 * A tried candidate's score is the mean of its accuracy rank and its
 * accuracy-per-joule rank in its round (1 = best); an untried one gets the
 * mean score of the tried candidates sharing its EM size, stream buffer or
 * swap ratio (its region), or 0.5 without any. Weight = 0.05 + score^2.
 * Later rounds try half as many candidates as the first (at least 2: the
 * incumbent and a challenger): the weights already say where to look, and
 * each trial costs the device energy.
 */
export function weightedRandomNavigator(space: CandidateSpace, options: NavigatorOptions = {}): Navigator & { weights(): Map<string, number> } {
  const k = roundSize(space.candidates.length, options);
  const scores = new Map<string, number>();
  let incumbent: MiroCandidate | undefined;
  const weights = (): Map<string, number> => {
    const region = (c: MiroCandidate): number => {
      const dims: ((x: MiroCandidate) => number)[] = [(x) => x.memory, (x) => x.streamBuffer, (x) => x.swapRatio];
      const means: number[] = [];
      for (const dim of dims) {
        const same = space.candidates.filter((x) => dim(x) === dim(c) && scores.has(x.key)).map((x) => scores.get(x.key)!);
        if (same.length > 0) means.push(same.reduce((a, b) => a + b, 0) / same.length);
      }
      return means.length === 0 ? 0.5 : means.reduce((a, b) => a + b, 0) / means.length;
    };
    return new Map(space.candidates.map((c) => {
      const s = scores.get(c.key) ?? region(c);
      return [c.key, 0.05 + s * s];
    }));
  };
  return {
    name: 'weighted-random',
    weights,
    select(rng) {
      if (scores.size === 0) return rng.shuffle([...space.candidates]).slice(0, k);
      const w = weights();
      const rest = space.candidates.filter((c) => c.key !== incumbent?.key);
      // Efraimidis-Spirakis: weighted sampling without replacement, key u^(1/w).
      const keyed = rest.map((c) => ({ c, key: Math.pow(Math.max(rng.next(), 1e-12), 1 / w.get(c.key)!) })).sort((a, b) => b.key - a.key);
      const later = Math.min(space.candidates.length, Math.max(2, Math.ceil(k / 2)));
      const picked = keyed.slice(0, incumbent === undefined ? later : later - 1).map((x) => x.c);
      return incumbent === undefined ? picked : [incumbent, ...picked];
    },
    observe(results, chosen) {
      incumbent = chosen;
      const acc = rankScores(results.map((r) => r.accuracy));
      const util = rankScores(results.map((r) => utility(r)));
      results.forEach((r, i) => scores.set(r.candidate.key, (acc[i]! + util[i]!) / 2));
    },
    exportState: () => ({ scores: [...scores.entries()], incumbent: incumbent?.key ?? null }),
    importState(state) {
      scores.clear();
      for (const [key, v] of state.scores) if (space.candidates.some((c) => c.key === key)) scores.set(key, v);
      incumbent = space.candidates.find((c) => c.key === state.incumbent);
    },
  };
}

export function createNavigator(name: NavigatorName, space: CandidateSpace, options: NavigatorOptions = {}): Navigator {
  switch (name) {
    case 'grid': return gridNavigator(space);
    case 'random': return randomNavigator(space, options);
    case 'weighted-random': return weightedRandomNavigator(space, options);
    default:
      throw new StrataError('STRATA_ERR_BAD_OPTION', `unknown navigator '${String(name)}' (expected ${NAVIGATORS.join(', ')})`, { option: 'navigator' });
  }
}
