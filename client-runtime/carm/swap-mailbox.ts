/**
 * The shared-memory mailbox between the training loop and the swap worker:
 * a control block and two rings (requests, responses) in SharedArrayBuffers,
 * indexed by Atomics-updated counters, so the training thread can poll
 * delivered samples without ever yielding to the event loop.
 */


/** Int32 indices of the control block. Counters grow monotonically; ring index = counter % capacity. */
export const CTRL = Object.freeze({ REQ_HEAD: 0, REQ_TAIL: 1, RES_HEAD: 2, STOP: 3, STATUS: 4, ERR_LEN: 5 });
/** Float64 indices of the control block's statistics. */
export const CTRL_F64 = Object.freeze({ BUSY_MS: 0 });
export const WORKER_STATUS = Object.freeze({ STARTING: 0, RUNNING: 1, FAILED: 2, STOPPED: 3 });
export const CTRL_INT32S = 16;
export const CTRL_F64_OFFSET = 64;
export const CTRL_F64S = 8;
export const CTRL_ERR_OFFSET = 128;
export const CTRL_BYTES = 4096;

/** A request: slot, label, generation, step, time (ms, main thread's clock). */
export const REQ_FIELDS = 5;
/** Response header, Float64s: slot, label, generation, step, time, task, status, hasLogits. */
export const RES_HEADER = Object.freeze({ SLOT: 0, LABEL: 1, GENERATION: 2, STEP: 3, TIME: 4, TASK: 5, STATUS: 6, HAS_LOGITS: 7 });
export const RES_HEADER_BYTES = 64;
export const RES_STATUS = Object.freeze({ SAMPLE: 1, MISSED: 2 });

export interface SwapMailboxLayout {
  capacity: number;
  featureSize: number;
  featureType: 'uint8' | 'float32';
  logitsSize: number;
  /** Byte offsets within a response record. */
  featuresOffset: number;
  logitsOffset: number;
  recordBytes: number;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

export function swapMailboxLayout(capacity: number, featureSize: number, featureType: 'uint8' | 'float32', logitsSize: number): SwapMailboxLayout {
  const featureBytes = align8(featureSize * (featureType === 'uint8' ? 1 : 4));
  const featuresOffset = RES_HEADER_BYTES;
  const logitsOffset = featuresOffset + featureBytes;
  return { capacity, featureSize, featureType, logitsSize, featuresOffset, logitsOffset, recordBytes: logitsOffset + align8(logitsSize * 4) };
}

export interface SwapWorkerData {
  file: string;
  layout: SwapMailboxLayout;
  storageLatencyMs: number;
  seed: number;
  control: SharedArrayBuffer;
  requests: SharedArrayBuffer;
  responses: SharedArrayBuffer;
}
