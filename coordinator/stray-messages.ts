import { ProtocolError, decodeWeightFrameHeader, type ResultMessage } from '../protocol/index.js';
import type { Assignment } from './round-engine-types.js';

/*
 * Why a client's message that matches none of its work is refused: its
 * round is over (STRATA_ERR_STALE_ROUND: late, or sent again), else it was
 * not expected (STRATA_ERR_UNEXPECTED_MESSAGE). `openRound` is the open
 * round's id, or the next round's when none is open.
 */

/** A result message that answers no assignment of its client's (or one whose update is already on its way). */
export function strayResultError(m: ResultMessage, a: Assignment | undefined, openRound: number): ProtocolError {
  const stale = m.roundId < openRound || (a !== undefined && m.modelVersion < a.modelVersion);
  return new ProtocolError(stale ? 'STRATA_ERR_STALE_ROUND' : 'STRATA_ERR_UNEXPECTED_MESSAGE',
    stale ? `round ${m.roundId} is over (open round: ${openRound})` : 'no assignment awaits this result', { roundId: m.roundId });
}

/** A weight frame that follows no result message (a malformed header is refused as what it is). */
export function strayFrameError(frame: Buffer, openRound: number): ProtocolError {
  let err = new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'weight frame without a result message first');
  try {
    const h = decodeWeightFrameHeader(frame);
    if (h.roundId < openRound) err = new ProtocolError('STRATA_ERR_STALE_ROUND', `round ${h.roundId} is over`, { roundId: h.roundId });
  } catch (e) {
    if (e instanceof ProtocolError) err = e;
  }
  return err;
}
