import { StrataError } from '../../common/strata-error.js';
import { EpisodicMemory } from './episodic-memory.js';
import { isSwapPolicyName, type SwapPolicyName } from './swap-policy.js';

export type SwapMode = 'async' | 'sync' | 'off';
export type SwapManagerState = 'running' | 'closing' | 'closed' | 'failed';

export interface SwapManagerOptions {
  mode: SwapMode;
  /** Fraction of the replayed EM samples swapped out after each step, in [0, 1]. */
  ratio: number;
  policy: SwapPolicyName;
  /** The sample store file (opened read-only; its writer is the StreamWriter). Unused when mode is 'off'. */
  storeFile: string;
  memory: EpisodicMemory;
  /** Per stored-sample read, really waited by the reader (default 0). */
  storageLatencyMs?: number;
  /** Seeds the policy's and the fetches' randomness. Default 0. */
  seed?: number;
  /**
   * Swaps in flight at most (async); a step's swaps beyond it are skipped
   * (counted). Bounds the worker's lag (about maxPendingSwaps x latency) and
   * the wait of drain(). Default 64.
   */
  maxPendingSwaps?: number;
}

export interface CompiledSwapManagerOptions {
  readonly mode: SwapMode;
  readonly ratio: number;
  readonly policy: SwapPolicyName;
  readonly storeFile: string;
  readonly storageLatencyMs: number;
  readonly seed: number;
  readonly maxPendingSwaps: number;
}

export interface SwapStats {
  /** Swaps asked of the reader. */
  requested: number;
  /** Stored samples read. */
  fetched: number;
  /** Written into the EM. */
  applied: number;
  /** No stored sample of that class. */
  missed: number;
  /** The slot was refilled by the stream or a resize meanwhile: the delivery was stale. */
  dropped: number;
  /** Chosen by the policy but not requested: `maxPendingSwaps` were in flight (async). */
  skipped: number;
  /** Requested, not yet applied (async). */
  pending: number;
  /** Steps trained between a request and its apply (0: in place for the very next step). */
  meanLagSteps: number;
  maxLagSteps: number;
  meanLagMs: number;
  /** Time the swap worker spent reading and waiting on storage (async). */
  workerBusyMs: number;
  /** Time the training loop spent waiting on swaps (sync). */
  syncWaitMs: number;
  /** Time spent in `drain()`. */
  drainWaitMs: number;
}

function badOption(option: string, why: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `swap manager option '${option}' ${why} (got ${typeof value === 'object' ? typeof value : String(value)})`, { option });
}

/** Applies defaults and validates; bad options fail here, naming the option. */
export function compileSwapManagerOptions(options: SwapManagerOptions): CompiledSwapManagerOptions {
  const { mode, ratio, policy, storeFile, memory } = options;
  if (mode !== 'async' && mode !== 'sync' && mode !== 'off') throw badOption('mode', "must be 'async', 'sync' or 'off'", mode);
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw badOption('ratio', 'must be a number in [0, 1]', ratio);
  if (!isSwapPolicyName(policy)) throw badOption('policy', "must be 'random', 'hybrid' or 'dynamic'", policy);
  if (!(memory instanceof EpisodicMemory)) throw badOption('memory', 'must be an EpisodicMemory', memory);
  if (mode !== 'off' && (typeof storeFile !== 'string' || storeFile.length === 0)) throw badOption('storeFile', 'must be a file path', storeFile);
  const storageLatencyMs = options.storageLatencyMs ?? 0;
  if (typeof storageLatencyMs !== 'number' || !(storageLatencyMs >= 0 && Number.isFinite(storageLatencyMs))) {
    throw badOption('storageLatencyMs', 'must be a finite number >= 0', storageLatencyMs);
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw badOption('seed', 'must be an integer', seed);
  const maxPendingSwaps = options.maxPendingSwaps ?? 64;
  if (!Number.isSafeInteger(maxPendingSwaps) || maxPendingSwaps < 1) throw badOption('maxPendingSwaps', 'must be an integer >= 1', maxPendingSwaps);
  return Object.freeze({ mode, ratio, policy, storeFile, storageLatencyMs, seed, maxPendingSwaps });
}
