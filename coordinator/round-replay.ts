import { decodeWeightFrame } from '../protocol/index.js';
import type { PendingUpdate } from '../storage-tier/coordinator-rows.js';
import type { GlobalModel } from './global-model.js';
import type { RoundEngineDeps } from './round-engine-types.js';
import type { UpdateAggregator } from './strategies/strategy.js';

/**
 * The round that was open when the process stopped, rebuilt from the update
 * log: a new aggregator with every accepted update of the round folded in
 * again, in log order. An update whose spooled bytes are gone is dropped
 * from the round (and from the log).
 */
export function replayRound(d: Pick<RoundEngineDeps, 'store' | 'strategy' | 'model' | 'log'>, roundId: number): { aggregator: UpdateAggregator; replayed: number } {
  const aggregator = d.strategy.createAggregator(d.model.numParams);
  let replayed = 0;
  for (const u of d.store.pendingUpdates(roundId)) {
    const delta = replayable(d.model, u);
    if (delta === undefined) {
      // Only a power cut under synchronous NORMAL loses spooled bytes: the round goes on without that update.
      d.log.error({ roundId, agentId: u.agentId, seq: u.seq }, 'an accepted update is missing from the spool; dropped from the round');
      d.store.forgetUpdate(u.seq);
      continue;
    }
    aggregator.add(delta, u.weight, u.scale);
    replayed++;
  }
  return { aggregator, replayed };
}

/**
 * A persisted update's delta: its spooled frame, checked again (CRC, layout, length, and the round and
 * model version of its row: a spool file is written over round after round, so bytes a power cut kept
 * from reaching the disk can leave an older round's frame where the row points), or a legacy row's payload.
 */
function replayable(model: GlobalModel, u: PendingUpdate): Float32Array | undefined {
  if (u.delta !== undefined) return u.delta;
  if (u.frame === undefined) return undefined;
  try {
    const f = decodeWeightFrame(u.frame, { kind: 'delta', roundId: u.assignedRound, layoutHash: model.layoutHash, elementCount: model.numParams, copy: true });
    return f.header.modelVersion === u.modelVersion ? f.weights : undefined;
  } catch {
    return undefined;
  }
}
