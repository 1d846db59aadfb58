import {
  ProtocolError,
  WEIGHT_FRAME_HEADER_BYTES,
  decodeWeightFrame,
  findNonFinite,
  type WeightFrameHeader,
} from '../protocol/index.js';
import { deltaNorm } from './strategies/clipping.js';

export interface UpdateExpectations {
  /** Round of the assignment the update answers. */
  roundId: number;
  /** Model version of that assignment. */
  modelVersion: number;
  layoutHash: string;
  numParams: number;
  /** The current global model: base of a full-weight (`update`) frame, which must be trained from it. */
  currentVersion: number;
  currentWeights: Float32Array;
  /** Reject above this L2 norm of the delta. */
  maxNorm: number;
  /**
   * Where a delta frame's values are copied before they are read (the
   * round's aggregator's `stage`), so the norm and the aggregation read one
   * copy. Without it the delta stays a view into the frame.
   */
  stage?: ((delta: Float32Array) => Float32Array) | undefined;
}

export interface ValidUpdate {
  header: WeightFrameHeader;
  /** The delta (for a delta frame its staged copy, or else a view into the frame; for a full-weight frame `scratch`). */
  delta: Float32Array;
  norm: number;
  payloadBytes: number;
}

/**
 * Validates one update frame at the boundary: structure and checksum, kind,
 * layout, length, round and model version, finiteness and the norm bound.
 * Every failure is a coded ProtocolError; a frame that passes is safe to
 * aggregate. One pass over the payload computes the norm and, since float32
 * squares cannot overflow float64, detects NaN/Infinity at the same time.
 */
export function validateUpdate(data: Buffer, expect: UpdateExpectations, scratch: Float32Array): ValidUpdate {
  const { header, weights } = decodeWeightFrame(data, {
    kind: ['update', 'delta'],
    maxElements: expect.numParams,
    layoutHash: expect.layoutHash,
    elementCount: expect.numParams,
    roundId: expect.roundId,
  });
  if (header.modelVersion !== expect.modelVersion) {
    throw new ProtocolError('STRATA_ERR_STALE_ROUND', `update trained from model ${header.modelVersion}, assignment was model ${expect.modelVersion}`, {
      expected: expect.modelVersion, received: header.modelVersion,
    });
  }
  let base: Float32Array | undefined;
  if (header.kind === 'update') {
    if (header.modelVersion !== expect.currentVersion) {
      throw new ProtocolError('STRATA_ERR_STALE_ROUND', 'a full-weight update must be trained from the current model; send a delta', {
        currentVersion: expect.currentVersion, received: header.modelVersion,
      });
    }
    base = expect.currentWeights;
  }
  const values = base === undefined && expect.stage !== undefined ? expect.stage(weights) : weights;
  const norm = deltaNorm(values, base);
  if (!Number.isFinite(norm)) {
    const index = findNonFinite(weights);
    throw new ProtocolError('STRATA_ERR_NON_FINITE', `update has a non-finite value${index >= 0 ? ` at index ${index}` : ''}`, { index });
  }
  if (norm > expect.maxNorm) {
    throw new ProtocolError('STRATA_ERR_UPDATE_NORM', `update norm ${norm.toPrecision(4)} exceeds ${expect.maxNorm}`, { norm, maxNorm: expect.maxNorm });
  }
  let delta = values;
  if (base !== undefined) {
    for (let i = 0, n = weights.length; i < n; i++) scratch[i] = weights[i]! - base[i]!;
    delta = scratch;
  }
  return { header, delta, norm, payloadBytes: data.length - WEIGHT_FRAME_HEADER_BYTES };
}
