import type { TrainingConfig } from '../../protocol/index.js';

/** Test accuracy and loss of a model version. */
export interface Evaluation { accuracy: number; loss: number }
/** Scores a global model version (server-side evaluation). */
export type Evaluator = (weights: Float32Array) => Evaluation | Promise<Evaluation>;

/** The round a strategy is asked about. */
export interface RoundContext {
  roundId: number;
  /** The global model version the round's clients train from. */
  modelVersion: number;
  /** The round's seed (from the run's seed): a draw from it is reproducible. */
  seed: number;
}

/** A client the engine could assign, as a strategy's selection sees it. */
export interface SelectionCandidate {
  id: string;
  /** Its device profile's name. */
  profile: string;
  /** Moving average of its outcomes (1 = every update accepted, 0 = every one refused or dropped). */
  reliability: number;
  /** Its mean seconds from assignment to update, or null before its first. */
  meanSeconds: number | null;
  roundsDone: number;
}

/** What `selectClients` gets besides the candidates. */
export interface SelectionContext extends RoundContext {
  /** Selections made in this round before this one (a round tops up after expiries). */
  selection: number;
  /** Uniform [0, 1) draws seeded by (run seed, round, selection): use it for any randomness. */
  random(): number;
}

/**
 * A federated strategy, with Flower's life cycle: configure a round (which
 * clients, what they train with), aggregate its updates (streaming: memory
 * O(model)), turn the aggregate into the next global model, optionally
 * evaluate it on the server, and export / import its state so a restarted
 * coordinator carries on. The coordinator's round engine calls it the same
 * way in the daemon and in a simulation; new algorithms are new objects
 * implementing this, never branches in the engine. `StrategyWrapper` is a
 * base for ones that change one step of another (clipping, evaluation).
 *
 * Updates always arrive as deltas (client weights minus the model they were
 * trained from), validated (layout, length, finite, the norm bound).
 */
export interface FederatedStrategy {
  /** Shown in status, logs and reports. */
  readonly name: string;
  /** `sync`: rounds of selected clients; `async` (FedBuff): clients train continuously, the model steps every K updates. */
  readonly mode: 'sync' | 'async';
  /** Fields added to this round's training config (FedProx: `fedproxMu`). */
  configureRound(round: RoundContext): Partial<TrainingConfig>;
  /**
   * Picks up to `count` of the idle candidates (sorted by id) for the round.
   * Optional: without it the coordinator's `selection` policy picks.
   */
  selectClients?(candidates: readonly SelectionCandidate[], count: number, context: SelectionContext): readonly string[];
  /**
   * Aggregation weight of one update, or null when it must be refused as too
   * stale. `staleness` = model versions between the one it was trained from and now.
   */
  updateWeight(numSamples: number, staleness: number): number | null;
  /** Factor (<= 1) an update of L2 norm `norm` is scaled by before it is aggregated (clipping). Optional: 1. */
  updateScale?(norm: number): number;
  /** A fresh aggregator for one round (or FedBuff buffer). */
  createAggregator(numParams: number): UpdateAggregator;
  /** The next global model from the current one and the round's aggregated delta. May reuse `global`. */
  applyAggregate(global: Float32Array, aggregate: Float32Array): Float32Array;
  /** Server-side evaluation of each new global model. Optional: no accuracy is recorded. */
  evaluate?(weights: Float32Array, round: { roundId: number; modelVersion: number }): Evaluation | Promise<Evaluation>;
  /** The strategy's settings, for status and reports. */
  settings?(): Record<string, unknown>;
  /** A round closed (after `applyAggregate`): a DP strategy accounts it. Optional. */
  roundClosed?(round: ClosedRound): void;
  /** Privacy spent so far, for a DP strategy; else undefined. */
  privacySpent?(): PrivacySpent | undefined;
  /**
   * Why the next round must not run (it would spend past the strategy's
   * privacy budget), or null. The engine logs it and stops. Optional.
   */
  budgetSpent?(next: { population: number; perRound: number }): string | null;
  /** Server-side state to persist with each model version (FedAdam's moments), or null. */
  exportState(): Uint8Array | null;
  importState(state: Uint8Array | null): void;
}

/** What a DP strategy reports after each round. */
export interface PrivacySpent {
  mode: 'local' | 'central';
  /** Central DP whose noise the devices add in shares under secure aggregation. */
  distributed: boolean;
  noiseMultiplier: number;
  clip: number;
  delta: number;
  /** Epsilon of this round alone, and of all rounds so far (RDP composition). */
  epsilonRound: number;
  epsilon: number;
  /** Sampling rate used for this round (clients selected / population). */
  q: number;
  rounds: number;
  budget: { epsilon: number; delta: number } | null;
}

/** A closed round, as a strategy that accounts privacy sees it. */
export interface ClosedRound {
  roundId: number;
  /** Updates in the aggregate. */
  contributors: number;
  /** Clients the engine knows (the population a round samples from). */
  population: number;
  /** K: updates a round is meant to have. */
  perRound: number;
  /** The devices added the central noise in shares (secure aggregation): K shares make the whole. */
  distributedNoise: boolean;
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
  /**
   * Add one validated delta with its weight; `scale` is the clipping factor (<= 1).
   * `delta` is valid only during the call (it may be a view of memory the next update reuses: the
   * server's buffer for update frames, or the engine's scratch): an aggregator that keeps it copies it.
   */
  add(delta: Float32Array, weight: number, scale?: number): void;
  /**
   * Optional: a copy of a delta in the aggregator's working memory, which
   * `add` (and the update's norm, computed before it) read where it is
   * instead of copying the delta in again. Valid until the next `stage`;
   * a streaming aggregator may offer it, a buffering one must not (it
   * would keep a view of memory the next update overwrites).
   */
  stage?(delta: Float32Array): Float32Array;
  /** The aggregated delta (a new array). Throws when nothing was added. */
  result(): Float32Array;
}
