import type { RoundAssignmentMessage, TrainingConfig } from '../protocol/index.js';
import type { SecAggWeighting } from '../secure-aggregation/compatibility.js';
import { roundSeed } from './client-selection.js';
import type { Assignment, RoundEngineDeps } from './round-engine-types.js';

/**
 * The message that assigns a client to a round: its deadline (the round's,
 * `deadlineAt`, on the engine's clock), the model's layout, the training
 * config, and how to weight a masked update under secure aggregation.
 */
export function roundAssignment(d: RoundEngineDeps, a: Assignment, deadlineAt: number, now: number, weighting: SecAggWeighting | undefined): RoundAssignmentMessage {
  const model = d.model;
  return {
    type: 'round-assignment', roundId: a.roundId, modelVersion: a.modelVersion,
    deadlineMs: Math.max(1, Math.round(deadlineAt - now)), deadlineAt, layoutHash: model.layoutHash, numParams: model.numParams, updateKind: 'delta',
    config: trainingConfig(d, a, weighting !== undefined),
    ...(weighting !== undefined ? { secureAggregation: { weighting } } : {}),
  };
}

/**
 * The training config of an assignment: the coordinator's, what the
 * strategy adds for the round, and the round's seed. Under secure
 * aggregation, central DP's noise is added by the devices in shares
 * (distributed DP): K of them make the whole.
 */
export function trainingConfig(d: RoundEngineDeps, a: Assignment, secureAggregation: boolean): TrainingConfig {
  const o = d.options;
  const seed = roundSeed(o.seed, a.roundId);
  const config: TrainingConfig = { ...o.training, ...d.strategy.configureRound({ roundId: a.roundId, modelVersion: a.modelVersion, seed }), seed };
  if (secureAggregation && config.dp?.mode === 'central') config.dp = { ...config.dp, noiseShares: o.perRound };
  return config;
}
