import type { Logger } from 'pino';
import type { CoordinatorStore } from '../storage-tier/coordinator-store.js';
import type { ClientRegistry } from './client-registry.js';
import type { CompiledCoordinatorOptions } from './coordinator-options.js';
import type { CoordinatorMetrics } from './coordinator-metrics.js';
import type { GlobalModel } from './global-model.js';
import type { FederatedStrategy, UpdateAggregator } from './strategies/strategy.js';

/** The round engine's states, what it is given, and the shapes of its rounds (the engine itself: round-engine.ts). */
export type EngineState = 'idle' | 'waiting' | 'open' | 'aggregating' | 'draining' | 'finished' | 'stopped';

export interface Evaluation { accuracy: number; loss: number }
export type Evaluator = (weights: Float32Array) => Evaluation | Promise<Evaluation>;

export interface RoundSummary {
  roundId: number; modelVersion: number; applied: number; seconds: number; accuracy: number | null; loss: number | null;
}

export interface RoundEngineDeps {
  options: CompiledCoordinatorOptions;
  store: CoordinatorStore;
  registry: ClientRegistry;
  strategy: FederatedStrategy;
  metrics: CoordinatorMetrics;
  model: GlobalModel;
  log: Logger;
  evaluate?: Evaluator | undefined;
  onRoundCompleted?: (summary: RoundSummary) => void;
  onFinished?: () => void;
}

export interface Assignment { roundId: number; modelVersion: number; assignedAt: number }
export interface OpenRound {
  id: number; startedAt: number; deadlineAt: number; timer: NodeJS.Timeout | undefined;
  aggregator: UpdateAggregator; contributors: Set<string>;
}
