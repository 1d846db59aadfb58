import { ProtocolError, encodeWeightFrame } from '../protocol/index.js';
import type { GlobalModel } from './global-model.js';
import type { Assignment, OpenRound, RoundEngineDeps } from './round-engine-types.js';
import { StrataError } from '../common/strata-error.js';
import { validateUpdate } from './update-validator.js';

/** An update taken into a round. */
export interface TakenUpdate {
  numSamples: number;
  /** Model versions between the one it was trained from and the current one. */
  staleness: number;
  weight: number;
  norm: number;
  /** Clipping factor applied (1: not clipped). */
  scale: number;
}

/**
 * Takes one update frame into the open round: validates it (structure,
 * checksum, layout, length, round and model version, finite values, the
 * norm bound), weighs and scales it by the strategy (refusing one too
 * stale; clipping), makes it durable (the frame in the round's spool now,
 * its log row and its client's row in the store's next group commit, which
 * calls `onDurable`: the ack) and folds it into the round's aggregator. Throws a coded
 * ProtocolError for an update that must be refused; times the work into the
 * metrics.
 */
export function takeUpdate(
  d: RoundEngineDeps, scratch: Float32Array, round: OpenRound, clientId: string, data: Buffer, a: Assignment, now: number, onDurable: () => void,
): TakenUpdate {
  const model: GlobalModel = d.model;
  const o = d.options;
  const t0 = performance.now();
  const v = validateUpdate(data, {
    roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: model.layoutHash, numParams: model.numParams,
    currentVersion: model.version, currentWeights: model.weights, maxNorm: o.maxUpdateNorm, stage: round.aggregator.stage,
  }, scratch);
  const staleness = model.version - v.header.modelVersion;
  const weight = d.strategy.updateWeight(v.header.numSamples, staleness);
  if (weight === null) throw new ProtocolError('STRATA_ERR_STALE_ROUND', `update is ${staleness} versions stale`);
  const scale = d.strategy.updateScale?.(v.norm) ?? 1;
  if (!(scale > 0 && scale <= 1)) {
    throw new StrataError('STRATA_ERR_BAD_STRATEGY', `strategy ${d.strategy.name}: updateScale(${v.norm}) returned ${scale} (expected (0, 1])`, { strategy: d.strategy.name });
  }
  const t1 = performance.now();
  // The frame as it came when it carries the delta (its CRC covers it when read back); a full-weight update's delta re-encoded.
  const frame = v.header.kind === 'delta' ? data : encodeWeightFrame({
    kind: 'delta', roundId: v.header.roundId, modelVersion: v.header.modelVersion, layoutHash: v.header.layoutHash, numSamples: v.header.numSamples,
  }, v.delta);
  const client = d.registry.accepted(clientId, (now - a.assignedAt) / 1000, now, false);
  d.store.acceptUpdate({
    roundId: round.id, assignedRound: a.roundId, agentId: clientId, modelVersion: v.header.modelVersion, numSamples: v.header.numSamples,
    weight, scale, norm: v.norm, bytes: v.payloadBytes, receivedAt: now,
  }, frame, client, () => {
    d.metrics.updateDurable((performance.now() - t1) / 1000);
    onDurable();
  });
  const t2 = performance.now();
  round.aggregator.add(v.delta, weight, scale);
  const t3 = performance.now();
  d.metrics.updateAccepted({
    bytes: v.payloadBytes, aggregationSeconds: (t1 - t0 + t3 - t2) / 1000, persistSeconds: (t2 - t1) / 1000, assignmentSeconds: (now - a.assignedAt) / 1000,
  });
  return { numSamples: v.header.numSamples, staleness, weight, norm: v.norm, scale };
}
