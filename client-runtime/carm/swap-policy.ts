/**
 * CarM's swap policies: which EM slots, among the ones just replayed, to
 * swap out for other stored samples of the same class.
 */
import { StrataError } from '../../common/strata-error.js';
import type { Rng } from '../../ml/rng.js';

export type SwapPolicyName = 'random' | 'hybrid' | 'dynamic';
export const SWAP_POLICIES: readonly SwapPolicyName[] = Object.freeze(['random', 'hybrid', 'dynamic']);

/** One EM sample of the minibatch just trained on. */
export interface ReplayedSampleInfo {
  slot: number;
  label: number;
  /** The model predicted `label`. */
  correct: boolean;
  /** Entropy of the model's predictive distribution for the sample. */
  entropy: number;
}

/** `ceil(ratio x n)`, without the float error that makes ceil(0.7 x 10) = 8. */
export function swapCount(ratio: number, n: number): number {
  return Math.min(n, Math.max(0, Math.ceil(ratio * n - 1e-9)));
}

export function isSwapPolicyName(name: unknown): name is SwapPolicyName {
  return typeof name === 'string' && (SWAP_POLICIES as readonly string[]).includes(name);
}

/**
 * Chooses `ceil(ratio x replayed.length)` slots to swap out.
 * - `random`: uniformly among the replayed samples.
 * - `hybrid` (CarM's hybrid_balanced): each class gets a quota proportional
 *   to its share of the replayed samples (largest remainders, so quotas sum
 *   to the total); within a class, correctly predicted samples go first,
 *   lowest entropy (easiest) first, then wrong ones, highest entropy first,
 *   so confidently wrong (hard) samples are the last to leave.
 * - `dynamic`: `random` while epochProgress < 0.5 of the task's epochs, then `hybrid`.
 * Replayed entries are expected to name distinct slots.
 */
export function selectSwapSlots(policy: SwapPolicyName, replayed: readonly ReplayedSampleInfo[], ratio: number, epochProgress: number, rng: Rng): Int32Array {
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `swap ratio must be in [0, 1] (got ${ratio})`, { option: 'ratio', value: ratio });
  }
  const k = swapCount(ratio, replayed.length);
  if (k === 0) return new Int32Array(0);
  switch (policy) {
    case 'random':
      return randomSlots(replayed, k, rng);
    case 'hybrid':
      return hybridSlots(replayed, k, rng);
    case 'dynamic':
      return epochProgress < 0.5 ? randomSlots(replayed, k, rng) : hybridSlots(replayed, k, rng);
    default:
      throw new StrataError('STRATA_ERR_BAD_OPTION', `unknown swap policy '${String(policy)}' (random, hybrid or dynamic)`, { option: 'policy', value: policy });
  }
}

function randomSlots(replayed: readonly ReplayedSampleInfo[], k: number, rng: Rng): Int32Array {
  const n = replayed.length;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const out = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
    out[i] = replayed[idx[i]!]!.slot;
  }
  return out;
}

/** Swap-out order within a class: correct by entropy ascending, then wrong by entropy descending. */
function easiestFirst(a: ReplayedSampleInfo, b: ReplayedSampleInfo): number {
  if (a.correct !== b.correct) return a.correct ? -1 : 1;
  return a.correct ? a.entropy - b.entropy : b.entropy - a.entropy;
}

function hybridSlots(replayed: readonly ReplayedSampleInfo[], k: number, rng: Rng): Int32Array {
  const n = replayed.length;
  const byClass = new Map<number, ReplayedSampleInfo[]>();
  for (const r of replayed) {
    const list = byClass.get(r.label);
    if (list === undefined) byClass.set(r.label, [r]);
    else list.push(r);
  }
  // Largest-remainder apportionment of k over the classes' shares; ties of
  // the remainder are broken at random so no class is favoured every step.
  const classes = [...byClass.entries()].map(([label, members]) => {
    const exact = (k * members.length) / n;
    const quota = Math.floor(exact + 1e-9);
    return { label, members, quota, remainder: exact - quota, tie: rng.next() };
  });
  let left = k - classes.reduce((s, c) => s + c.quota, 0);
  const byRemainder = [...classes].sort((a, b) => b.remainder - a.remainder || a.tie - b.tie);
  for (const c of byRemainder) {
    if (left === 0) break;
    if (c.quota < c.members.length) {
      c.quota++;
      left--;
    }
  }
  const out = new Int32Array(k);
  let o = 0;
  for (const c of classes) {
    if (c.quota === 0) continue;
    const ordered = c.members.slice().sort(easiestFirst);
    for (let i = 0; i < c.quota; i++) out[o++] = ordered[i]!.slot;
  }
  return out;
}
