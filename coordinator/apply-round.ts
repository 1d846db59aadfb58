import { StrataError } from '../common/strata-error.js';
import type { OpenRound, RoundEngineDeps, RoundSummary } from './round-engine-types.js';
import { secAggSummary } from './secagg-sessions.js';

/** A closed round as applied to the model, before its evaluation. */
export type AppliedRound = Omit<RoundSummary, 'accuracy' | 'loss'>;

/**
 * Applies a closing round to the model: the strategy turns the round's
 * aggregate into the next model (checked), the store persists it with the
 * round's close in one step, then the model advances and the registry and
 * the strategy learn the round is done. Throws when the aggregate or the
 * strategy fails; nothing is then persisted or advanced.
 */
export function applyRound(d: RoundEngineDeps, round: OpenRound, closedBy: RoundSummary['closedBy']): { next: Float32Array; summary: AppliedRound } {
  const { model, strategy, store, options: o } = d;
  const aggregate = round.aggregator.result();
  const next = checkedModel(strategy.applyAggregate(model.weights.slice(), aggregate), model.numParams, strategy.name);
  const newVersion = model.version + 1;
  const closedAt = d.clock.now();
  const applied = store.completeRound({
    roundId: round.id, newVersion, layoutHash: model.layoutHash, weights: next, strategyState: strategy.exportState(), closedAt,
  });
  model.advance(next, newVersion);
  d.registry.roundDone(round.contributors);
  strategy.roundClosed?.({
    roundId: round.id, contributors: round.contributors.size, population: Math.max(d.registry.size, o.perRound), perRound: o.perRound,
    distributedNoise: round.secagg !== undefined,
  });
  const privacy = strategy.privacySpent?.();
  const secureAggregation = secAggSummary(round);
  const summary: AppliedRound = {
    // Masked uploads are never logged one by one: the round applied its contributors' sum.
    roundId: round.id, modelVersion: newVersion, applied: round.secagg !== undefined ? round.contributors.size : applied, seconds: (closedAt - round.startedAt) / 1000,
    openedAt: round.startedAt, closedAt, contributors: [...round.contributors].sort(), closedBy,
    ...(secureAggregation !== undefined ? { secureAggregation } : {}),
    ...(privacy !== undefined ? { privacy } : {}),
  };
  return { next, summary };
}

/** A strategy's next model must be the model's length and finite: a broken strategy stops the run, it never poisons the model. */
function checkedModel(next: Float32Array, numParams: number, strategy: string): Float32Array {
  if (next.length !== numParams) {
    throw new StrataError('STRATA_ERR_BAD_STRATEGY', `strategy ${strategy}: applyAggregate returned ${next.length} values for a model of ${numParams}`, { strategy });
  }
  for (let i = 0; i < next.length; i++) {
    if (!Number.isFinite(next[i]!)) throw new StrataError('STRATA_ERR_BAD_STRATEGY', `strategy ${strategy}: applyAggregate returned a non-finite value at ${i}`, { strategy, index: i });
  }
  return next;
}
