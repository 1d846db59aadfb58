import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import type { ProtocolErrorCode, ResultMessage } from '../protocol/index.js';
import type { CoordinatorStore } from '../storage-tier/coordinator-store.js';
import type { ClientRegistry } from './client-registry.js';
import type { CompiledCoordinatorOptions } from './coordinator-options.js';
import type { CoordinatorMetrics } from './coordinator-metrics.js';
import type { GlobalModel } from './global-model.js';
import type { SecAggRound } from '../secure-aggregation/secagg-round.js';
import type { FederatedStrategy, PrivacySpent, UpdateAggregator } from './strategies/strategy.js';

/** The round engine's states, what it is given, and the shapes of its rounds (the engine itself: round-engine.ts). */
export type EngineState = 'idle' | 'waiting' | 'open' | 'unmasking' | 'aggregating' | 'draining' | 'finished' | 'stopped';

export type { Evaluation, Evaluator, PrivacySpent } from './strategies/strategy.js';

export interface RoundSummary {
  roundId: number;
  modelVersion: number;
  applied: number;
  /** Seconds on the engine's clock from the round's opening to its close. */
  seconds: number;
  openedAt: number;
  closedAt: number;
  /** Clients whose update went into this model version. */
  contributors: string[];
  /** Why it closed: K updates, its deadline (with at least the minimum completion), or a drain. */
  closedBy: 'quorum' | 'deadline' | 'drain';
  /** Secure aggregation: the session that produced the sum. */
  secureAggregation?: SecAggSummary;
  /** Differential privacy spent after this round (the strategy's accountant), when it runs DP. */
  privacy?: PrivacySpent;
  accuracy: number | null;
  loss: number | null;
}

/** A secure-aggregation round as its summary reports it. */
export interface SecAggSummary {
  /** Parties that advertised keys (the graph's nodes). */
  parties: number;
  neighbours: number;
  /** Shares that reconstruct a seed. */
  threshold: number;
  /** Masked updates in the sum. */
  uploads: number;
  /** Sessions the round needed (a failed one is run again). */
  sessions: number;
  /** Worst-case absolute error of a coordinate of the aggregate from quantization. */
  quantizationBound: number;
}

/** One update the engine accepted. */
export interface AcceptedUpdate {
  roundId: number;
  /** Round of the assignment it answers (older than `roundId` for a stale FedBuff update). */
  assignedRound: number;
  clientId: string;
  profile: string;
  numSamples: number;
  /** Model versions between the one it was trained from and the current one. */
  staleness: number;
  weight: number;
  norm: number;
  /** Clipping factor applied (1: not clipped). */
  scale: number;
  assignedAt: number;
  at: number;
  /** The client's result message: its metrics, joules and device report. */
  result: ResultMessage;
}

/**
 * What happened, as it happened (the simulation builds its report from
 * these; the daemon logs and counts). Times are on the engine's clock.
 */
export interface RoundEngineObserver {
  roundOpened?(e: { roundId: number; modelVersion: number; at: number }): void;
  assigned?(e: { roundId: number; clientId: string; profile: string; modelVersion: number; at: number }): void;
  accepted?(e: AcceptedUpdate): void;
  rejected?(e: { roundId: number | null; clientId: string; code: ProtocolErrorCode; at: number }): void;
  /** A result that came after its round closed (a straggler): acknowledged as not needed, without blame. */
  late?(e: { roundId: number; clientId: string; at: number; result: ResultMessage }): void;
  /** A client that disconnected while it held an assignment. */
  dropped?(e: { roundId: number; clientId: string; at: number }): void;
  /** Idle clients assigned in an open round in place of clients that dropped out of it (also reported as `assigned`). */
  replaced?(e: { roundId: number; clientIds: string[]; at: number }): void;
  roundCompleted?(summary: RoundSummary): void;
  finished?(): void;
}

export interface RoundEngineDeps {
  options: CompiledCoordinatorOptions;
  store: CoordinatorStore;
  registry: ClientRegistry;
  strategy: FederatedStrategy;
  metrics: CoordinatorMetrics;
  model: GlobalModel;
  log: Logger;
  /** Where the engine reads time and sets its deadline timers. */
  clock: Clock;
  observer?: RoundEngineObserver | undefined;
}

export interface Assignment {
  roundId: number;
  modelVersion: number;
  assignedAt: number;
  /** After this (assignedAt + the round deadline) an unanswered assignment no longer holds its client. */
  expiresAt: number;
}

export interface OpenRound {
  id: number;
  startedAt: number;
  deadlineAt: number;
  timer: { cancel(): void } | undefined;
  aggregator: UpdateAggregator;
  contributors: Set<string>;
  /** Clients assigned in this round and still linked (one whose assignment expired is not picked again in the same round). */
  assigned: Set<string>;
  /** Selections made in this round (each seeds its own draw). */
  selections: number;
  /** Assignments of this round whose client dropped out and that no replacement has taken over yet. */
  unreplaced: number;
  /** Secure aggregation: the round's session (it is also `aggregator`); a failed session is replaced by a new one in the same round. */
  secagg?: SecAggRound | undefined;
  /** Sessions run in this round (secure aggregation). */
  sessions?: number;
  /** How the round will close once unmasked. */
  closing?: RoundSummary['closedBy'];
}
