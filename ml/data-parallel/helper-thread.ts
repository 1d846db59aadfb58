/**
 * A data-parallel helper: a worker thread that computes the gradient of its
 * rows of each batch from the main thread's weights on the main thread's
 * shared heap (a plan of dense layers as a `DensePart` there, in place;
 * any other plan with the fast step on its own single-threaded wasm
 * backend, copying the weights in and the gradient out), then runs its
 * range of the optimizer update there with Strata's SIMD kernels bound to
 * that heap. Started by `HelperPool`; control.ts has the protocol. It blocks
 * in `Atomics.wait` between steps and never returns to its event loop
 * until told to stop.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { FastStep } from '../fast-step/fast-step.js';
import { WasmHeap, type TensorInfo } from '../fast-step/wasm-heap.js';
import { simdKernelsFor, type HeapMemory, type SimdKernels } from '../wasm-simd/simd-kernels.js';
import {
  BATCH_ROWS, controlViews, DONE, FAILED, GO, GRAD_AREA, GRADS, LOGITS, PLAN, RANGE_HI, RANGE_LO, ROWS, SCRATCH, SEQ, STATUS, STEP, STOPPED, X, X_TABLE, Y,
  waitForEither, waitWhile, type HelperMessage, type HelperReport,
} from './control.js';
import { DensePart } from './dense-part.js';
import { rebuildPlan, type PlanSpec } from './plan-spec.js';
import { runUpdateRange, StepPlan } from './step-plan.js';

interface Attached {
  key: number;
  spec: PlanSpec;
  slots: tf.Variable[];
  step: FastStep;
  /** The weight version each slot variable holds. */
  seen: Int32Array;
  /** The plan as a dense part on the main heap, where it is one (and the SIMD kernels load there). */
  dense: DensePart | undefined;
}

const { control, port, memory } = workerData as { control: SharedArrayBuffer; port: MessagePort; memory: HeapMemory };
const { ints, loss } = controlViews(control);
/** Loads of a control word before sleeping: the next step usually comes within ~0.2 ms, the go within microseconds. */
const SPIN_IDLE = 50_000;
const SPIN_GO = 200_000;

/** Views of the main thread's heap, taken again when it grows. */
class MainHeap {
  #buffer: ArrayBufferLike | undefined;
  i32: Int32Array<ArrayBufferLike> = new Int32Array(0);
  f32: Float32Array<ArrayBufferLike> = new Float32Array(0);

  refresh(): this {
    const buffer = memory.buffer;
    if (buffer !== this.#buffer || this.f32.byteLength !== buffer.byteLength) {
      this.#buffer = buffer;
      this.i32 = new Int32Array(buffer);
      this.f32 = new Float32Array(buffer);
    }
    return this;
  }
}

function detach(a: Attached | undefined): void {
  for (const v of a?.slots ?? []) v.dispose();
}

function attach(m: Extract<HelperMessage, { type: 'attach' }>, heap: WasmHeap, kernels: SimdKernels | undefined, main: MainHeap): Attached {
  const plan = rebuildPlan(m.spec);
  return {
    key: m.key, spec: m.spec, slots: plan.slots, step: new FastStep(heap, plan.ops, plan.vars, m.spec.classes),
    seen: new Int32Array(m.spec.params.length).fill(-1),
    dense: kernels === undefined ? undefined : DensePart.of(m.spec, kernels, () => main.refresh().f32),
  };
}

/** This helper's rows as a dense part, wholly on the main heap (weights read in place, the gradient written to its area). */
function densePart(dense: DensePart, plan: StepPlan, main: MainHeap): void {
  const i32 = main.i32;
  loss[0] = dense.run({
    x: Atomics.load(ints, X), table: Atomics.load(ints, X_TABLE), y: Atomics.load(ints, Y), rows: Atomics.load(ints, ROWS), batchRows: Atomics.load(ints, BATCH_ROWS),
    logits: Atomics.load(ints, LOGITS), gradArea: Atomics.load(ints, GRAD_AREA), scratch: Atomics.load(ints, SCRATCH),
    weight: (slot) => plan.offset(i32, slot),
  });
}

/** New tensors for the weights that changed (XNNPACK caches packed filters by tensor, so a write in place would go unseen). */
function loadWeights(a: Attached, plan: StepPlan, main: MainHeap, heap: WasmHeap): void {
  a.spec.params.forEach((p, i) => {
    const { offset, version } = plan.slot(main.i32, i);
    if (version === a.seen[i]) return;
    const info = heap.alloc(p.shape);
    heap.f32().set(main.f32.subarray(offset >>> 2, (offset >>> 2) + p.size), heap.at(info));
    const t = heap.toTensor(info);
    a.slots[i]!.assign(t);
    t.dispose();
    a.seen[i] = version;
  });
}

/** This helper's rows: the gradient written to its area on the main heap, the loss to the control block, logits if asked. */
function gradients(a: Attached, plan: StepPlan, main: MainHeap, heap: WasmHeap): void {
  const rows = Atomics.load(ints, ROWS);
  const { inputSize, classes } = a.spec;
  loadWeights(a, plan, main, heap);
  const x = heap.alloc([rows, inputSize]);
  const y = heap.alloc([rows, classes]);
  try {
    const h = heap.f32();
    const xo = Atomics.load(ints, X) >>> 2;
    const yo = Atomics.load(ints, Y) >>> 2;
    h.set(main.f32.subarray(xo, xo + rows * inputSize), heap.at(x));
    h.set(main.f32.subarray(yo, yo + rows * classes), heap.at(y));
    const logitsAt = Atomics.load(ints, LOGITS);
    const area = Atomics.load(ints, GRAD_AREA) >>> 2;
    const r = a.step.part(x, y, Atomics.load(ints, BATCH_ROWS), logitsAt !== 0, (grads: (TensorInfo | undefined)[]) => {
      const hf = heap.f32();
      for (const p of a.spec.params) {
        if (p.trainable < 0) continue;
        const g = grads[p.trainable];
        const to = area + p.gradOffset;
        if (g === undefined) main.f32.fill(0, to, to + p.size);
        else main.f32.set(hf.subarray(heap.at(g), heap.at(g) + p.size), to);
      }
    });
    loss[0] = r.loss;
    if (r.logits !== null) main.f32.set(r.logits, logitsAt >>> 2);
  } finally {
    heap.free(x, y);
  }
}

function report(r: HelperReport): void {
  port.postMessage(r);
}

async function main(): Promise<void> {
  await initBackend({ backend: 'wasm', threads: 1 });
  const heap = new WasmHeap(tf.backend());
  const kernels: SimdKernels | undefined = simdKernelsFor(memory);
  const mainHeap = new MainHeap();
  parentPort!.postMessage({ type: 'ready', simd: kernels !== undefined });
  let attached: Attached | undefined;
  let seen = 0;
  for (;;) {
    waitWhile(ints, SEQ, seen, SPIN_IDLE);
    const seq = Atomics.load(ints, SEQ);
    let stop = false;
    let isStep = false;
    let ok = true;
    try {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
        const msg = m.message as HelperMessage;
        if (msg.type === 'stop') stop = true;
        else if (msg.type === 'detach' && attached?.key === msg.key) {
          detach(attached);
          attached = undefined;
        } else if (msg.type === 'attach') {
          detach(attached);
          attached = undefined;
          attached = attach(msg, heap, kernels, mainHeap);
        }
      }
      isStep = !stop && Atomics.load(ints, STEP) === seq;
      if (isStep) {
        if (attached === undefined) throw new Error('step without an attached plan');
        const main = mainHeap.refresh();
        const plan = StepPlan.at(main.i32, Atomics.load(ints, PLAN), attached.spec.params.length);
        if (Atomics.load(ints, SCRATCH) === 0) gradients(attached, plan, main, heap);
        else if (attached.dense !== undefined) densePart(attached.dense, plan, main);
        else throw new Error('a dense part asked of a plan that is not one');
      }
    } catch (err) {
      ok = false;
      report({ type: 'error', message: (err as Error).stack ?? String(err) });
      Atomics.store(ints, STATUS, FAILED);
    }
    if (isStep || (!stop && Atomics.load(ints, STEP) === seq)) {
      Atomics.store(ints, GRADS, seq);
      Atomics.notify(ints, GRADS);
    }
    if (isStep && ok) {
      try {
        if (waitForEither(ints, GO, seq, -seq, SPIN_GO) === seq) {
          if (kernels === undefined) throw new Error('no SIMD kernels on the main heap');
          const main = mainHeap.refresh();
          const plan = StepPlan.at(main.i32, Atomics.load(ints, PLAN), attached!.spec.params.length);
          runUpdateRange(kernels, plan.readUpdate(main.i32, main.f32), plan.gradAreas(main.i32), Atomics.load(ints, RANGE_LO), Atomics.load(ints, RANGE_HI));
        }
      } catch (err) {
        report({ type: 'error', message: (err as Error).stack ?? String(err) });
        Atomics.store(ints, STATUS, FAILED);
      }
    }
    seen = seq;
    if (stop) {
      detach(attached);
      attached = undefined;
      Atomics.store(ints, STATUS, STOPPED);
    }
    Atomics.store(ints, DONE, seq);
    Atomics.notify(ints, DONE);
    if (stop) break;
  }
  port.close();
}

main().catch((err: unknown) => {
  parentPort!.postMessage({ type: 'error', message: (err as Error).stack ?? String(err) });
});
