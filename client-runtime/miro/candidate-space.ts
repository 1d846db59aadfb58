import { StrataError } from '../../common/strata-error.js';

/** One configuration of the memory hierarchy Miro can choose for the next task. */
export interface MiroCandidate {
  /** Stable id within its space, e.g. `em100-sb0.25-sr0.5`. */
  readonly key: string;
  /** Episodic-memory slots in RAM. */
  readonly memory: number;
  /** Fraction of the next task's stream the device keeps and trains on, in (0, 1]. */
  readonly streamBuffer: number;
  /** Fraction of the replayed EM samples swapped per step (CarM), in [0, 1]. */
  readonly swapRatio: number;
}

export interface CandidateSpaceOptions {
  /** EM sizes. Default [25, 50, 100, 200, 400]. */
  memories?: readonly number[];
  /** Stream-buffer fractions. Default [0.25, 0.5, 1]. */
  streamBuffers?: readonly number[];
  /** Swap ratios. Default [0.1, 0.5]. */
  swapRatios?: readonly number[];
}

export const MIRO_SPACE_DEFAULTS = Object.freeze({
  memories: Object.freeze([25, 50, 100, 200, 400]),
  streamBuffers: Object.freeze([0.25, 0.5, 1]),
  swapRatios: Object.freeze([0.1, 0.5]),
});

/** The grid of candidates: every EM size x stream buffer x swap ratio, smallest first. */
export interface CandidateSpace {
  readonly candidates: readonly MiroCandidate[];
  readonly memories: readonly number[];
  readonly streamBuffers: readonly number[];
  readonly swapRatios: readonly number[];
}

function sortedUnique(name: string, values: readonly number[], ok: (v: number) => boolean, expected: string): number[] {
  if (values.length === 0) throw new StrataError('STRATA_ERR_BAD_OPTION', `Miro candidate space: ${name} is empty`, { option: name });
  for (const v of values) {
    if (!Number.isFinite(v) || !ok(v)) throw new StrataError('STRATA_ERR_BAD_OPTION', `Miro candidate space: ${name} must hold ${expected} (got ${v})`, { option: name, value: v });
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

export function candidateKey(c: { memory: number; streamBuffer: number; swapRatio: number }): string {
  return `em${c.memory}-sb${c.streamBuffer}-sr${c.swapRatio}`;
}

export function buildCandidateSpace(options: CandidateSpaceOptions = {}): CandidateSpace {
  const memories = sortedUnique('memories', options.memories ?? MIRO_SPACE_DEFAULTS.memories, (v) => Number.isInteger(v) && v >= 1, 'integers >= 1');
  const streamBuffers = sortedUnique('streamBuffers', options.streamBuffers ?? MIRO_SPACE_DEFAULTS.streamBuffers, (v) => v > 0 && v <= 1, 'fractions in (0, 1]');
  const swapRatios = sortedUnique('swapRatios', options.swapRatios ?? MIRO_SPACE_DEFAULTS.swapRatios, (v) => v >= 0 && v <= 1, 'fractions in [0, 1]');
  const candidates: MiroCandidate[] = [];
  for (const memory of memories) {
    for (const streamBuffer of streamBuffers) {
      for (const swapRatio of swapRatios) candidates.push(Object.freeze({ key: candidateKey({ memory, streamBuffer, swapRatio }), memory, streamBuffer, swapRatio }));
    }
  }
  return Object.freeze({ candidates: Object.freeze(candidates), memories, streamBuffers, swapRatios });
}

/** The largest configuration of a space (every dimension at its maximum) and the smallest. */
export function extremes(space: CandidateSpace): { largest: MiroCandidate; smallest: MiroCandidate } {
  const c = space.candidates;
  return { smallest: c[0]!, largest: c[c.length - 1]! };
}
