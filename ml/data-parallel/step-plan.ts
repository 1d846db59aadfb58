import type { AdamOperands, AdamSplit } from '../heap-adam.js';
import type { SimdKernels } from '../wasm-simd/simd-kernels.js';

/**
 * A data-parallel step's plan: Int32 words on the main thread's heap that
 * every helper reads there.
 *
 *   slots S, then S x (byte offset of the slot's weights, version)
 *   helpers H, then H x (byte offset of helper h's gradient area)
 *   pieces P (0: no shared update), then P x (w, g, m, v, out, n, gradient offset in floats)
 *   k1 k2 b1 b2 eps, as float32
 */
export function planWords(slots: number, helpers: number, maxPieces: number): number {
  return 1 + 2 * slots + 1 + helpers + 1 + 7 * maxPieces + 5;
}

export interface UpdatePiece extends AdamOperands {
  /** First float of this variable's gradient in each helper's gradient area. */
  gradOffset: number;
}

/** Reads and writes a plan at word `base` of a heap (views are taken per call: the heap's buffer changes when it grows). */
export class StepPlan {
  readonly #base: number;
  readonly #slots: number;
  readonly #helpers: number;

  constructor(byteOffset: number, slots: number, helpers: number) {
    this.#base = byteOffset >>> 2;
    this.#slots = slots;
    this.#helpers = helpers;
  }

  /** A plan another thread wrote (its helper count read from the heap). */
  static at(i32: Int32Array, byteOffset: number, slots: number): StepPlan {
    return new StepPlan(byteOffset, slots, i32[(byteOffset >>> 2) + 1 + 2 * slots]!);
  }

  get #piecesAt(): number {
    return this.#base + 1 + 2 * this.#slots + 1 + this.#helpers;
  }

  writeHeader(i32: Int32Array, gradAreas: readonly number[]): void {
    const b = this.#base;
    i32[b] = this.#slots;
    i32[b + 1 + 2 * this.#slots] = this.#helpers;
    gradAreas.forEach((g, h) => {
      i32[b + 2 + 2 * this.#slots + h] = g;
    });
    i32[this.#piecesAt] = 0;
  }

  /** Slot `i`'s weights are at `byteOffset`; `changed` bumps its version (helpers copy it again). */
  writeSlot(i32: Int32Array, i: number, byteOffset: number, changed: boolean): void {
    const at = this.#base + 1 + 2 * i;
    i32[at] = byteOffset;
    if (changed) Atomics.add(i32, at + 1, 1);
  }

  slot(i32: Int32Array, i: number): { offset: number; version: number } {
    const at = this.#base + 1 + 2 * i;
    return { offset: i32[at]!, version: Atomics.load(i32, at + 1) };
  }

  /** Byte offset of slot `i`'s weights. */
  offset(i32: Int32Array, i: number): number {
    return i32[this.#base + 1 + 2 * i]!;
  }

  gradAreas(i32: Int32Array): number[] {
    const b = this.#base + 2 + 2 * this.#slots;
    return Array.from({ length: this.#helpers }, (_, h) => i32[b + h]!);
  }

  /** The update to share (an `AdamSplit`), or none (0 pieces). */
  writeUpdate(i32: Int32Array, f32: Float32Array, split: AdamSplit | undefined, gradOffsetOf: (index: number) => number): void {
    let at = this.#piecesAt;
    const pieces = split?.pieces ?? [];
    i32[at++] = pieces.length;
    for (const p of pieces) {
      i32.set([p.w, p.g, p.m, p.v, p.out, p.n, gradOffsetOf(p.index)], at);
      at += 7;
    }
    const c = split?.constants ?? { k1: 0, k2: 0, b1: 0, b2: 0, eps: 0 };
    f32.set([c.k1, c.k2, c.b1, c.b2, c.eps], at);
  }

  readUpdate(i32: Int32Array, f32: Float32Array): { pieces: UpdatePiece[]; k1: number; k2: number; b1: number; b2: number; eps: number } {
    let at = this.#piecesAt;
    const n = i32[at++]!;
    const pieces: UpdatePiece[] = [];
    for (let k = 0; k < n; k++, at += 7) {
      pieces.push({ w: i32[at]!, g: i32[at + 1]!, m: i32[at + 2]!, v: i32[at + 3]!, out: i32[at + 4]!, n: i32[at + 5]!, gradOffset: i32[at + 6]! });
    }
    return { pieces, k1: f32[at]!, k2: f32[at + 1]!, b1: f32[at + 2]!, b2: f32[at + 3]!, eps: f32[at + 4]! };
  }
}

/** Total floats of an update's pieces. */
export function updateFloats(pieces: readonly { n: number }[]): number {
  return pieces.reduce((s, p) => s + p.n, 0);
}

/**
 * Each thread's range of the update's floats (pieces concatenated), in
 * multiples of 4 floats; thread 0 is the main thread.
 */
export function updateRanges(total: number, threads: number): [number, number][] {
  const chunk = Math.ceil(total / threads / 4) * 4;
  return Array.from({ length: threads }, (_, t) => [Math.min(total, t * chunk), Math.min(total, (t + 1) * chunk)] as [number, number]);
}

/**
 * Runs floats [lo, hi) of the update: each piece's gradient plus every
 * helper's (in helper order: the same sum whichever thread runs it; the
 * last one added inside Adam's pass), then Adam. `kernels` must be bound
 * to the main thread's heap.
 */
export function runUpdateRange(
  kernels: SimdKernels, update: ReturnType<StepPlan['readUpdate']>, gradAreas: readonly number[], lo: number, hi: number,
): void {
  let start = 0;
  for (const p of update.pieces) {
    const s = Math.max(lo, start) - start;
    const e = Math.min(hi, start + p.n) - start;
    start += p.n;
    if (e <= s) continue;
    const n = e - s;
    const b = 4 * s;
    const last = gradAreas.length - 1;
    for (let h = 0; h < last; h++) kernels.addTo(p.g + b, gradAreas[h]! + 4 * (p.gradOffset + s), n);
    const g2 = last < 0 ? 0 : gradAreas[last]! + 4 * (p.gradOffset + s);
    kernels.adam(p.w + b, p.g + b, p.m + b, p.v + b, p.out + b, n, update.k1, update.k2, update.b1, update.b2, update.eps, g2);
  }
}
