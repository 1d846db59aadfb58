import type * as tf from '@tensorflow/tfjs';
import type { FastStep, FastStepResult } from '../fast-step/fast-step.js';
import { view, type TensorInfo, type WasmHeap } from '../fast-step/wasm-heap.js';
import type { AdamSplit, HeapOptimizer } from '../heap-adam.js';
import { StrataError } from '../../common/strata-error.js';
import type { DataSplit } from '../datasets/dataset.js';
import { BATCH_ROWS, GRAD_AREA, LOGITS, PLAN, RANGE_HI, RANGE_LO, ROWS, SCRATCH, X, X_TABLE, Y } from './control.js';
import { DensePart } from './dense-part.js';
import type { HelperPool } from './helper-pool.js';
import type { PlanSpec } from './plan-spec.js';
import { planWords, runUpdateRange, StepPlan, updateFloats, updateRanges, type UpdatePiece } from './step-plan.js';

/** Fewer rows per thread than this and a step runs on the main thread alone (the handshakes would cost more than they save). */
export const MIN_ROWS_PER_THREAD = 8;

let nextKey = 1;

/**
 * Each thread's rows of a batch: as even as can be, helpers taking the
 * remainder (the main thread also builds batches). Undefined below
 * `minRows` per thread, where a step runs on the main thread alone. The
 * same batch size and thread count always split the same way.
 */
export function splitRows(batch: number, threads: number, minRows: number): number[] | undefined {
  if (threads < 2 || batch < threads * minRows) return undefined;
  const base = Math.floor(batch / threads);
  const extra = batch - base * threads;
  return Array.from({ length: threads }, (_, i) => base + (i > 0 && i <= extra ? 1 : 0));
}

/** A batch on the main heap: byte offsets of x's first row (`xRowBytes` apart; bytes through `table` unless that is 0) and of y. */
interface HeapBatch {
  x: number;
  xRowBytes: number;
  table: number;
  y: number;
  rows: number;
}

/** An update shared across threads: its pieces, the helpers' gradient areas, each thread's range (main first). */
interface SharedUpdate {
  update: { pieces: UpdatePiece[]; k1: number; k2: number; b1: number; b2: number; eps: number };
  gradAreas: number[];
  ranges: [number, number][];
}

interface RowBuffers {
  x: TensorInfo;
  y: TensorInfo;
  table: TensorInfo;
  rows: number;
  scale: number;
}

interface Buffers {
  /** The step plan (weights' offsets and versions, the update's pieces), on the main heap. */
  plan: TensorInfo;
  planAt: StepPlan;
  /** Each helper's gradient area (the plan's gradient layout). */
  grads: TensorInfo[];
  /** Each helper's logits ([rows, classes] floats), while steps capture them. */
  logits: TensorInfo[];
  logitsRows: number;
  /** For dense parts: the main thread's gradient area and logits, and each thread's scratch (main first) for `scratchRows` rows. */
  mainGrads: TensorInfo | undefined;
  mainLogits: TensorInfo | undefined;
  scratch: TensorInfo[];
  scratchRows: number;
}

/**
 * One training step split across threads by rows (data parallelism). The
 * main thread and each helper thread compute the gradient of their rows of
 * the batch from the same weights. The main thread's heap is shared (tfjs's
 * threaded build on one XNNPACK thread), so helpers read their rows and the
 * weights there and write their gradients there: the main thread copies
 * nothing. A plan of dense layers only (the MLP) runs as a `DensePart` on
 * every thread, wholly on that heap: weights read where they lie, each
 * thread's gradient written straight into its area, no tensor allocated.
 * Any other plan (the CNN) runs the fast step on each helper's own
 * single-threaded wasm engine, which copies the weights in when they
 * change and its gradient out. Then every thread runs its range of the Adam update on the main
 * heap (each range adds the helpers' gradients to the main thread's in
 * helper order, then applies Adam), and the main thread assigns the new
 * weights. Each part's loss is divided by the whole batch's rows, so the
 * parts add up to the batch's gradient and loss: losses match one thread's
 * within float rounding, and the same batch size and thread count give the
 * same bits on every run (the split and the summation order are fixed).
 *
 * Why rows and not XNNPACK's own pool (`parallelism: 'intra-op'`): that
 * pool splits every kernel and waits for all its threads at the end of
 * each, so with batch 64 the MLP's ~20 kernels per step (0.01-1 ms) each
 * pay a barrier, and one thread the machine delays stalls them all. Rows
 * meet three times per step. Measured on the 2-core bench machine: see
 * bench/train.ts (`mlpThreadSpeedup`, `cnnThreadSpeedup`). Where an MLP
 * step's time goes there (batch 64, two threads, timestamps on both
 * threads over 200 steps; medians of the quieter runs): the rows' bytes
 * and labels to the heap 15-20 us, the helper's start 5 us, laying out the
 * update 25-35 us (while the helper computes), each thread's 32 rows
 * 1.05-1.2 ms as dense parts, each half of the update 0.16-0.18 ms (Adam
 * with the other part's gradient summed in its pass), assigning the new
 * weights 7-20 us: a step 1.3-1.5 ms, against 2.5-2.6 ms on one thread.
 * Before the dense part the helper ran 0.15-0.3 ms behind the main thread
 * (copying the weights in and its gradient out) while the main thread
 * built the float batch alone (~0.11 ms). Uneven rows (31/33, 30/34) were
 * slower: 32-row parts keep the GEMM's 8-column tiles full. What is left is
 * the machine: a step needs both cores at once, so whatever else runs
 * (another process, V8's own background threads) stalls the step it lands
 * in; the mean step runs 15-30% above the median where one thread's runs
 * 5-10% above.
 */
export class DataParallelStep {
  readonly #pool: HelperPool;
  readonly #heap: WasmHeap;
  readonly #fast: FastStep;
  readonly #spec: PlanSpec;
  readonly #refs: readonly tf.Variable[];
  readonly #key = nextKey++;
  readonly #gradOffset: number[];
  /** The plan as a dense part on the main heap, where it is one (see `DensePart`). */
  readonly #dense: DensePart | undefined;
  /** Each slot's weights' byte offset, this step. */
  readonly #weights: number[];
  #buffers: Buffers | undefined;
  #rowBuffers: RowBuffers | undefined;
  /** The tensor each slot's values were last published from. */
  readonly #published: (object | undefined)[];
  #broken: string | undefined;

  constructor(pool: HelperPool, heap: WasmHeap, fast: FastStep, spec: PlanSpec, refs: readonly tf.Variable[]) {
    this.#pool = pool;
    this.#heap = heap;
    this.#fast = fast;
    this.#spec = spec;
    this.#refs = refs;
    this.#published = new Array<object | undefined>(refs.length).fill(undefined);
    this.#gradOffset = new Array<number>(spec.trainableCount).fill(0);
    for (const p of spec.params) if (p.trainable >= 0) this.#gradOffset[p.trainable] = p.gradOffset;
    this.#weights = new Array<number>(spec.params.length).fill(0);
    const simd = heap.simd;
    this.#dense = pool.sharedUpdate && simd !== undefined ? DensePart.of(spec, simd, () => heap.f32()) : undefined;
  }

  /** Threads that compute a step (1 once a helper has failed: see `brokenReason`). */
  get threads(): number {
    return this.#broken === undefined ? this.#pool.size + 1 : 1;
  }

  /** Why steps went back to the main thread alone, if they did. */
  get brokenReason(): string | undefined {
    return this.#broken;
  }

  #parts(batch: number): number[] | undefined {
    return this.#broken === undefined && this.#pool.state === 'running' ? splitRows(batch, this.#pool.size + 1, MIN_ROWS_PER_THREAD) : undefined;
  }

  run(x: tf.Tensor2D, y: tf.Tensor2D, captureLogits: boolean, optimizer: HeapOptimizer): FastStepResult {
    const parts = this.#parts(x.shape[0]);
    if (parts === undefined) return this.#fast.run(x, y, undefined, captureLogits, (grads) => optimizer.apply(grads));
    const heap = this.#heap;
    const batch: HeapBatch = { x: heap.at(x) * 4, xRowBytes: 4 * this.#spec.inputSize, table: 0, y: heap.at(y) * 4, rows: x.shape[0] };
    const result = this.#tryRun(batch, { x, y }, parts, captureLogits, optimizer);
    return result ?? this.#fast.run(x, y, undefined, captureLogits, (grads) => optimizer.apply(grads));
  }

  /**
   * A step on rows `indices` of `split` straight from its byte features:
   * the rows' bytes and one-hot labels are written to the heap and each
   * thread turns its own rows' bytes into floats (`scale` each) as it
   * transposes them, so the main thread builds no float batch. Undefined
   * where this step cannot take one (not a dense part, float features, an
   * optimizer that cannot split its update, one thread): the caller builds
   * the batch and calls `run`.
   */
  runRows(split: DataSplit, indices: ArrayLike<number>, scale: number, optimizer: HeapOptimizer): FastStepResult | undefined {
    const features = split.features;
    if (!(features instanceof Uint8Array) || this.#dense === undefined || !this.#pool.sharedUpdate || optimizer.split === undefined) return undefined;
    const rows = indices.length;
    const parts = this.#parts(rows);
    if (parts === undefined) return undefined;
    const heap = this.#heap;
    const { inputSize, classes } = this.#spec;
    const rb = this.#ensureRowBuffers(rows, scale);
    const x = heap.at(rb.x) * 4;
    const y = heap.at(rb.y);
    const bytes = new Uint8Array(heap.f32().buffer, x, rows * inputSize);
    const f32 = heap.f32();
    f32.fill(0, y, y + rows * classes);
    for (let r = 0; r < rows; r++) {
      const i = indices[r]!;
      bytes.set(features.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
      f32[y + r * classes + split.labels[i]!] = 1;
    }
    return this.#tryRun({ x, xRowBytes: inputSize, table: heap.at(rb.table) * 4, y: y * 4, rows }, undefined, parts, false, optimizer);
  }

  /** The step on several threads; undefined if a helper failed before anything changed (this step and the next then run on the main thread). */
  #tryRun(batch: HeapBatch, tensors: { x: tf.Tensor2D; y: tf.Tensor2D } | undefined, parts: number[], captureLogits: boolean, optimizer: HeapOptimizer): FastStepResult | undefined {
    let committed = false;
    try {
      return this.#run(batch, tensors, parts, captureLogits, optimizer, () => {
        committed = true;
      });
    } catch (err) {
      if (committed || (err as { code?: string }).code !== 'STRATA_ERR_WORKER') throw err;
      this.#broken = (err as Error).message;
      return undefined;
    }
  }

  /** The heap buffers of `runRows`: rows' bytes, labels and the byte-to-float table for `scale`. */
  #ensureRowBuffers(rows: number, scale: number): RowBuffers {
    const heap = this.#heap;
    const { inputSize, classes } = this.#spec;
    let rb = this.#rowBuffers;
    if (rb !== undefined && rb.rows >= rows && rb.scale === scale) return rb;
    if (rb !== undefined) heap.free(rb.x, rb.y, rb.table);
    const n = Math.max(rows, rb?.rows ?? 0);
    rb = { x: heap.alloc([Math.ceil((n * inputSize) / 4)]), y: heap.alloc([n, classes]), table: heap.alloc([256]), rows: n, scale };
    const t = heap.at(rb.table);
    const f32 = heap.f32();
    // As the batch builder rounds them: the byte times the scale, to float32.
    for (let v = 0; v < 256; v++) f32[t + v] = v * scale;
    this.#rowBuffers = rb;
    return rb;
  }

  #run(hb: HeapBatch, tensors: { x: tf.Tensor2D; y: tf.Tensor2D } | undefined, parts: number[], captureLogits: boolean, optimizer: HeapOptimizer, onCommit: () => void): FastStepResult {
    const heap = this.#heap;
    const pool = this.#pool;
    const helpers = pool.size;
    const batch = hb.rows;
    const { inputSize, classes } = this.#spec;
    // The dense part needs the update shared (its gradients are areas, not tensors an optimizer could apply).
    const dense = pool.sharedUpdate && optimizer.split !== undefined ? this.#dense : undefined;
    if (dense === undefined && tensors === undefined) throw new StrataError('STRATA_ERR_STATE', 'a data-parallel step from rows needs a dense part');
    const bufs = this.#ensureBuffers(captureLogits ? Math.max(...parts.slice(1)) : 0, dense === undefined ? 0 : Math.max(...parts));
    const i32 = heap.i32();
    const weights = this.#weights;
    this.#spec.params.forEach((_, i) => {
      const v = this.#refs[i]!;
      const changed = this.#published[i] !== v.dataId;
      weights[i] = heap.at(v) * 4;
      bufs.planAt.writeSlot(i32, i, weights[i]!, changed);
      this.#published[i] = v.dataId;
    });
    let row = parts[0]!;
    for (let h = 0; h < helpers; h++) {
      const rows = parts[h + 1]!;
      const { ints } = pool.control(h);
      Atomics.store(ints, X, hb.x + row * hb.xRowBytes);
      Atomics.store(ints, X_TABLE, hb.table);
      Atomics.store(ints, Y, hb.y + row * classes * 4);
      Atomics.store(ints, ROWS, rows);
      Atomics.store(ints, BATCH_ROWS, batch);
      Atomics.store(ints, LOGITS, captureLogits ? heap.at(bufs.logits[h]!) * 4 : 0);
      Atomics.store(ints, GRAD_AREA, heap.at(bufs.grads[h]!) * 4);
      Atomics.store(ints, PLAN, heap.at(bufs.plan) * 4);
      Atomics.store(ints, SCRATCH, dense === undefined ? 0 : heap.at(bufs.scratch[h + 1]!) * 4);
      pool.step(h);
      row += rows;
    }
    let released = false;
    const release = (run: boolean): void => {
      if (released) return;
      released = true;
      for (let h = 0; h < helpers; h++) pool.go(h, run);
    };
    /** Every thread's gradient is in: the update, shared where the optimizer can split it. */
    const update = (grads: readonly (TensorInfo | number | undefined)[], early?: { split: AdamSplit; shared: SharedUpdate }): void => {
      const split = early?.split ?? (pool.sharedUpdate && heap.simd !== undefined ? optimizer.split?.(grads) : undefined);
      const shared = early?.shared ?? (split === undefined ? undefined : this.#writeUpdate(bufs, split));
      try {
        for (let h = 0; h < helpers; h++) pool.waitGradients(h);
      } catch (err) {
        split?.abort();
        throw err;
      }
      if (split !== undefined) {
        // From here the moments change in place: a failure is no longer one to run again.
        onCommit();
        release(true);
        runUpdateRange(heap.simd!, shared!.update, shared!.gradAreas, shared!.ranges[0]![0], shared!.ranges[0]![1]);
        for (let h = 0; h < helpers; h++) pool.waitDone(h);
        split.commit();
      } else {
        if (dense !== undefined) throw new StrataError('STRATA_ERR_STATE', 'a dense data-parallel step needs an optimizer that splits its update');
        release(false);
        this.#addHelperGrads(grads as (TensorInfo | undefined)[], bufs);
        onCommit();
        optimizer.apply(grads as (TensorInfo | undefined)[]);
      }
    };
    let mine: FastStepResult;
    try {
      if (dense !== undefined) {
        const area = heap.at(bufs.mainGrads!) * 4;
        // The gradients' places are known before they are computed: the update is laid out while the helpers compute.
        const grads = this.#gradOffset.map((o) => area + 4 * o);
        const split = optimizer.split!(grads);
        if (split === undefined) throw new StrataError('STRATA_ERR_STATE', 'a dense data-parallel step needs an optimizer that splits its update');
        let loss: number;
        let shared: SharedUpdate;
        try {
          shared = this.#writeUpdate(bufs, split);
          loss = dense.run({
            x: hb.x, table: hb.table, y: hb.y, rows: parts[0]!, batchRows: batch, logits: captureLogits ? heap.at(bufs.mainLogits!) * 4 : 0,
            gradArea: area, scratch: heap.at(bufs.scratch[0]!) * 4, weight: (slot) => weights[slot]!,
          });
        } catch (err) {
          split.abort();
          throw err;
        }
        update(grads, { split, shared });
        mine = { loss, logits: captureLogits ? heap.f32().slice(heap.at(bufs.mainLogits!), heap.at(bufs.mainLogits!) + parts[0]! * classes) : null };
      } else {
        mine = this.#fast.part(view(tensors!.x, [parts[0]!, inputSize]), view(tensors!.y, [parts[0]!, classes]), batch, captureLogits, update);
      }
    } finally {
      release(false);
      let failure: unknown;
      for (let h = 0; h < helpers; h++) {
        try {
          pool.waitDone(h);
        } catch (err) {
          failure ??= err;
        }
      }
      // Surfaces a helper's failure that the step itself did not run into (it threw first, or ended before the helper did).
      if (failure !== undefined) throw failure;
    }
    let loss = mine.loss;
    for (let h = 0; h < helpers; h++) loss += pool.control(h).loss[0]!;
    let logits: Float32Array | null = null;
    if (captureLogits) {
      logits = new Float32Array(batch * classes);
      logits.set(mine.logits!, 0);
      const f32 = heap.f32();
      let at = parts[0]! * classes;
      for (let h = 0; h < helpers; h++) {
        const n = parts[h + 1]! * classes;
        const from = heap.at(bufs.logits[h]!);
        logits.set(f32.subarray(from, from + n), at);
        at += n;
      }
    }
    return { loss, logits };
  }

  /** The shared update in the plan, with each helper's range in its control block; returns what the main thread runs. */
  #writeUpdate(bufs: Buffers, split: AdamSplit): SharedUpdate {
    const heap = this.#heap;
    const gradOffsetOf = (index: number): number => this.#gradOffset[index]!;
    // Views after the split's allocations.
    bufs.planAt.writeUpdate(heap.i32(), heap.f32(), split, gradOffsetOf);
    const ranges = updateRanges(updateFloats(split.pieces), this.#pool.size + 1);
    for (let h = 0; h < this.#pool.size; h++) {
      const { ints } = this.#pool.control(h);
      Atomics.store(ints, RANGE_LO, ranges[h + 1]![0]);
      Atomics.store(ints, RANGE_HI, ranges[h + 1]![1]);
    }
    const pieces = split.pieces.map((p): UpdatePiece => ({ w: p.w, g: p.g, m: p.m, v: p.v, out: p.out, n: p.n, gradOffset: gradOffsetOf(p.index) }));
    return { update: { pieces, ...split.constants }, gradAreas: bufs.grads.map((g) => heap.at(g) * 4), ranges };
  }

  /** grads[k] += helper 1's, then helper 2's, ... (the order every range of a shared update uses too). */
  #addHelperGrads(grads: (TensorInfo | undefined)[], bufs: Buffers): void {
    const heap = this.#heap;
    const simd = heap.simd;
    for (const area of bufs.grads) {
      const s = heap.at(area);
      for (const p of this.#spec.params) {
        const g = p.trainable >= 0 ? grads[p.trainable] : undefined;
        if (g === undefined) continue;
        const o = heap.at(g);
        if (simd !== undefined) {
          simd.addTo(o * 4, (s + p.gradOffset) * 4, p.size);
        } else {
          const hf = heap.f32();
          for (let k = 0; k < p.size; k++) hf[o + k] = hf[o + k]! + hf[s + p.gradOffset + k]!;
        }
      }
    }
  }

  /** The plan and gradient areas on the main heap (logits areas for `logitsRows`), and this plan attached on every helper. */
  #ensureBuffers(logitsRows: number, scratchRows: number): Buffers {
    const heap = this.#heap;
    const spec = this.#spec;
    const helpers = this.#pool.size;
    let bufs = this.#buffers;
    if (bufs === undefined) {
      const plan = heap.alloc([planWords(spec.params.length, helpers, spec.trainableCount)]);
      const grads = Array.from({ length: helpers }, () => heap.alloc([spec.gradFloats]));
      const planAt = new StepPlan(heap.at(plan) * 4, spec.params.length, helpers);
      planAt.writeHeader(heap.i32(), grads.map((g) => heap.at(g) * 4));
      bufs = { plan, planAt, grads, logits: [], logitsRows: 0, mainGrads: undefined, mainLogits: undefined, scratch: [], scratchRows: 0 };
      this.#buffers = bufs;
      this.#published.fill(undefined);
    }
    if (logitsRows > bufs.logitsRows) {
      heap.free(...bufs.logits);
      bufs.logits = Array.from({ length: helpers }, () => heap.alloc([logitsRows, spec.classes]));
      bufs.logitsRows = logitsRows;
    }
    if (scratchRows > bufs.scratchRows) {
      heap.free(...bufs.scratch, bufs.mainLogits);
      bufs.mainGrads ??= heap.alloc([spec.gradFloats]);
      bufs.mainLogits = heap.alloc([scratchRows, spec.classes]);
      bufs.scratch = Array.from({ length: helpers + 1 }, () => heap.alloc([this.#dense!.scratchFloats(scratchRows)]));
      bufs.scratchRows = scratchRows;
    }
    for (let h = 0; h < helpers; h++) {
      if (this.#pool.attachedKey(h) !== this.#key) this.#pool.post(h, { type: 'attach', key: this.#key, spec });
    }
    return bufs;
  }

  /** Frees this trainer's buffers on the main heap and its plan on the helpers (at their next wake). */
  dispose(): void {
    const bufs = this.#buffers;
    if (bufs !== undefined) this.#heap.free(bufs.plan, ...bufs.grads, ...bufs.logits, bufs.mainGrads, bufs.mainLogits, ...bufs.scratch);
    const rb = this.#rowBuffers;
    if (rb !== undefined) this.#heap.free(rb.x, rb.y, rb.table);
    this.#rowBuffers = undefined;
    this.#buffers = undefined;
    if (this.#pool.state !== 'running') return;
    for (let h = 0; h < this.#pool.size; h++) if (this.#pool.attachedKey(h) === this.#key) this.#pool.post(h, { type: 'detach', key: this.#key });
  }
}
