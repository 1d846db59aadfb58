import type { TrainingConfig } from '../../protocol/index.js';

/**
 * A federated strategy (Flower's shape): configure a round, aggregate the
 * round's updates, and turn the aggregate into the next global model. New
 * algorithms are new files implementing this, never branches in the engine.
 *
 * Updates always arrive as deltas (client weights minus the model they were
 * trained from); the engine converts full-weight updates before they get here.
 */
export interface FederatedStrategy {
  readonly name: StrategyName;
  /** `sync`: rounds of selected clients; `async` (FedBuff): clients train continuously, aggregate every K updates. */
  readonly mode: 'sync' | 'async';
  /** Fields added to every assignment's training config (FedProx: `fedproxMu`). */
  configureRound(roundId: number): Partial<TrainingConfig>;
  /**
   * Aggregation weight of one update, or null when it must be rejected as too
   * stale. `staleness` = model versions between the one it was trained from and now.
   */
  updateWeight(numSamples: number, staleness: number): number | null;
  /** A fresh aggregator for one round (or FedBuff buffer). */
  createAggregator(numParams: number): UpdateAggregator;
  /** The next global model from the current one and the round's aggregated delta. May reuse `global`. */
  applyAggregate(global: Float32Array, aggregate: Float32Array): Float32Array;
  /** Server-side state to persist with each model version (FedAdam moments), or null. */
  exportState(): Uint8Array | null;
  importState(state: Uint8Array | null): void;
}

/** Folds a round's deltas into one aggregate. */
export interface UpdateAggregator {
  /**
   * Streaming (mean-type) aggregators keep O(model) memory; robust ones
   * (median, trimmed mean) must keep every update until the round closes.
   */
  readonly buffersUpdates: boolean;
  readonly count: number;
  readonly totalWeight: number;
  /** Add one validated delta with its weight; `scale` is the clipping factor (<= 1). */
  add(delta: Float32Array, weight: number, scale?: number): void;
  /** The aggregated delta (a new array). Throws when nothing was added. */
  result(): Float32Array;
}

export const STRATEGY_NAMES = ['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedbuff', 'median', 'trimmed-mean'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];
