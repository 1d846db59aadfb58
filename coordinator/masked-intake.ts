import { ProtocolError, WEIGHT_FRAME_HEADER_BYTES, decodeWeightFrame, maskedPayload } from '../protocol/index.js';
import type { SecAggWeighting } from '../secure-aggregation/compatibility.js';
import type { SecAggRound } from '../secure-aggregation/secagg-round.js';
import type { Assignment, RoundEngineDeps } from './round-engine-types.js';
import type { TakenUpdate } from './update-intake.js';

/**
 * Takes one masked update frame into a secure-aggregation round: checks its
 * structure, checksum, layout, length (the model's parameters plus the
 * weight), round and model version, then folds it into the session's
 * running sum mod p and lets it go. Nothing of it is stored or logged: it
 * is masked, and the sum is all the coordinator keeps. Its norm is unknown
 * by design (NaN); its weight is what the device was told to apply.
 */
export function takeMaskedUpdate(
  d: RoundEngineDeps, session: SecAggRound, weighting: SecAggWeighting, clientId: string, data: Buffer, a: Assignment, now: number,
): TakenUpdate {
  const t0 = performance.now();
  const numParams = d.model.numParams;
  const { header, weights } = decodeWeightFrame(data, {
    kind: 'masked', maxElements: numParams + 1, layoutHash: d.model.layoutHash, elementCount: numParams + 1, roundId: a.roundId,
  });
  if (header.modelVersion !== a.modelVersion) {
    throw new ProtocolError('STRATA_ERR_STALE_ROUND', `update trained from model ${header.modelVersion}, assignment was model ${a.modelVersion}`, {
      expected: a.modelVersion, received: header.modelVersion,
    });
  }
  session.addMasked(clientId, maskedPayload(weights));
  const t1 = performance.now();
  d.registry.accepted(clientId, (now - a.assignedAt) / 1000, now);
  d.metrics.updateAccepted({
    bytes: data.length - WEIGHT_FRAME_HEADER_BYTES, aggregationSeconds: (t1 - t0) / 1000, persistSeconds: (performance.now() - t1) / 1000, assignmentSeconds: (now - a.assignedAt) / 1000,
  });
  return { numSamples: header.numSamples, staleness: 0, weight: weighting === 'samples' ? Math.max(1, header.numSamples) : 1, norm: Number.NaN, scale: 1 };
}
