import type { PlanSpec } from './plan-spec.js';

/**
 * A helper thread's control block: a small SharedArrayBuffer that the main
 * thread and one helper read and write with Atomics. A step is
 *
 *   main: SEQ++ (STEP = SEQ)  -> helper: its rows' gradient -> GRADS = seq
 *   main: GO = seq (every gradient is in: run your range of the update)
 *         or -seq (no update to share) -> helper: DONE = seq
 *
 * Every byte offset points into the main thread's heap (a shared wasm
 * memory), which the helper reads (weights, its rows) and writes (its
 * gradient, logits, its range of the optimizer update) directly.
 * Messages (attach a plan, detach, stop) go on a MessagePort the helper
 * drains synchronously at each wake, so it never needs its event loop.
 */
export const SEQ = 0;
/** The sequence number of the last step command (a wake without a new step only drains messages). */
export const STEP = 1;
/** The helper has written its gradient (and loss, logits) for this sequence number. */
export const GRADS = 2;
/** Main's go for the update: seq (run your range) or -seq (nothing to run). */
export const GO = 3;
/** The helper is done with this sequence number. */
export const DONE = 4;
/** `RUNNING`, `FAILED` (the error is on the port) or `STOPPED`. */
export const STATUS = 5;
/** Byte offset of the helper's first row of x, and of y. */
export const X = 6;
export const Y = 7;
/** Rows of this helper's part. */
export const ROWS = 8;
/** Rows of the whole batch (the loss divisor). */
export const BATCH_ROWS = 9;
/** Byte offset to write this part's logits to (0: none). */
export const LOGITS = 10;
/** Byte offset of this helper's gradient area (the plan's gradient layout). */
export const GRAD_AREA = 11;
/** Byte offset of the step plan (see `StepPlan`). */
export const PLAN = 12;
/** This helper's range of the update, in floats of the concatenated variables. */
export const RANGE_LO = 13;
export const RANGE_HI = 14;
/** Byte offset of this helper's scratch for a dense part (`DensePart`) on the main heap; 0: the fast step on its own heap. */
export const SCRATCH = 15;
/** For a dense part: byte offset of the 256-float table its x bytes go through (0: x is floats). */
export const X_TABLE = 16;

export const RUNNING = 0;
export const FAILED = 1;
export const STOPPED = 2;

const INTS = 18;
/** Bytes of a control block: 18 Int32 words, then the part's loss as a Float64. */
export const CONTROL_BYTES = INTS * 4 + 8;

export interface ControlViews {
  ints: Int32Array;
  /** [0]: the loss of the helper's part (divided by the whole batch's rows). */
  loss: Float64Array;
}

export function controlViews(buffer: SharedArrayBuffer): ControlViews {
  return { ints: new Int32Array(buffer, 0, INTS), loss: new Float64Array(buffer, INTS * 4, 1) };
}

/**
 * Waits until `ints[index]` holds `value`: `spin` loads first (the other
 * thread is usually microseconds away), then `Atomics.wait`.
 */
export function waitFor(ints: Int32Array, index: number, value: number, spin: number): void {
  for (let s = 0; s < spin; s++) if (Atomics.load(ints, index) === value) return;
  for (let v = Atomics.load(ints, index); v !== value; v = Atomics.load(ints, index)) Atomics.wait(ints, index, v);
}

/** Waits while `ints[index]` holds `value` (spinning first, as `waitFor`). */
export function waitWhile(ints: Int32Array, index: number, value: number, spin: number): void {
  for (let s = 0; s < spin; s++) if (Atomics.load(ints, index) !== value) return;
  while (Atomics.load(ints, index) === value) Atomics.wait(ints, index, value);
}

/** Waits until `ints[index]` is `a` or `b`, and returns which. */
export function waitForEither(ints: Int32Array, index: number, a: number, b: number, spin: number): number {
  for (let s = 0; s < spin; s++) {
    const v = Atomics.load(ints, index);
    if (v === a || v === b) return v;
  }
  for (let v = Atomics.load(ints, index); ; v = Atomics.load(ints, index)) {
    if (v === a || v === b) return v;
    Atomics.wait(ints, index, v);
  }
}

/** Messages on a helper's port. */
export type HelperMessage =
  | { type: 'attach'; key: number; spec: PlanSpec }
  | { type: 'detach'; key: number }
  | { type: 'stop' };

/** What a helper reports back on its port. */
export type HelperReport = { type: 'error'; message: string };
