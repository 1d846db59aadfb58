import { WEIGHT_FRAME_HEADER_BYTES } from './weight-frame.js';

/** Bytes a round's JSON messages take each way (assignment down; result, and the ack and grant around it), rounded up. */
const MESSAGE_BYTES_PER_ROUND = 1024;

/**
 * Request-response exchanges per round that wait a full round trip: the
 * model's delivery after the assignment, and the update's (the result, then
 * the upload grant or the frame, then the ack).
 */
export const ROUND_TRIPS_PER_ROUND = 2;

export interface RoundTraffic {
  downBytes: number;
  upBytes: number;
  roundTrips: number;
}

/**
 * What one round moves over a device's radio: the model frame down, the
 * update frame up (float32 weights plus the frame header each way), the
 * JSON messages around them, and the round trips. The one count used by a
 * device's accounting (agent and simulated client alike) and so by the
 * simulation's virtual clock.
 */
export function roundTraffic(numParams: number): RoundTraffic {
  const frame = WEIGHT_FRAME_HEADER_BYTES + 4 * numParams;
  return { downBytes: frame + MESSAGE_BYTES_PER_ROUND, upBytes: frame + MESSAGE_BYTES_PER_ROUND, roundTrips: ROUND_TRIPS_PER_ROUND };
}
