import * as tf from '@tensorflow/tfjs';
import { biasRelu, columnSums, maxPoolReluGrad, reluGrad, rowSums, softmaxCrossEntropy } from './heap-loops.js';
import type { PlanOp } from './layer-plan.js';
import { view, type TensorInfo, type WasmHeap } from './wasm-heap.js';

/** Extra loss terms (DER++, FedProx, ...), as the trainer takes them. */
export type ExtraLoss = (logits: tf.Tensor2D, batch: { x: tf.Tensor2D; y: tf.Tensor2D }) => tf.Scalar;

/** Receives one step's gradients, index-aligned with the trainer's variables (undefined: no gradient). */
export type GradientSink = (grads: (TensorInfo | undefined)[]) => void;

export interface FastStepResult {
  loss: number;
  logits: Float32Array | null;
}

/**
 * An activation on the heap: batch-major ([batch, ...shape], as tfjs lays
 * it out) or feature-major ([features, batch], the dense layers' layout).
 */
interface Act {
  info: TensorInfo;
  featureMajor: boolean;
  /** Values per sample. */
  features: number;
}

type DenseOp = Extract<PlanOp, { kind: 'dense' }>;
type ConvOp = Extract<PlanOp, { kind: 'conv2d' }>;
type PoolOp = Extract<PlanOp, { kind: 'maxpool' }>;

/**
 * One training step of a planned layer chain, by hand on the wasm heap: no
 * autograd tape, no saved-tensor copies, no engine bookkeeping.
 *
 * Dense layers run feature-major (activations [features, batch]): every
 * product then has the weight matrix as XNNPACK's `a` operand, which it
 * reads in place, and a batch-sized activation as `b`, which it packs —
 * where the batch-major layout would pack (and transpose) the whole weight
 * matrix at every step because it changes at every step. Bias and ReLU are
 * one SIMD pass. Convolutions and pools stay batch-major (NHWC) on XNNPACK's
 * fused bias+ReLU convolution; the pool, ReLU and bias gradients are one
 * fused loop. Softmax cross-entropy and its gradient are one loop. Same
 * arithmetic as tfjs's autograd, so losses agree to float rounding.
 */
export class FastStep {
  readonly #heap: WasmHeap;
  readonly #ops: readonly PlanOp[];
  readonly #vars: readonly tf.Variable[];
  readonly #classes: number;
  /** Index of the first op with a trainable weight: ops before it need no input gradient. */
  readonly #firstTrainable: number;

  constructor(heap: WasmHeap, ops: readonly PlanOp[], vars: readonly tf.Variable[], classes: number) {
    this.#heap = heap;
    this.#ops = ops;
    this.#vars = vars;
    this.#classes = classes;
    this.#firstTrainable = ops.findIndex((op) => (op.kind === 'dense' || op.kind === 'conv2d') && (op.kernel.index >= 0 || (op.bias?.index ?? -1) >= 0));
  }

  run(x: tf.Tensor2D, y: tf.Tensor2D, extra: ExtraLoss | undefined, captureLogits: boolean, apply: GradientSink): FastStepResult {
    return this.#run(x, y, x.shape[0], extra === undefined ? undefined : { term: extra, x, y }, captureLogits, apply);
  }

  /**
   * The step on one part of a batch (a data-parallel thread's rows): `x`
   * [rows, features] and `y` [rows, classes] on this heap, the loss and its
   * gradient divided by `batchRows`, the whole batch's rows, so the parts'
   * losses and gradients add up to the batch's. No extra loss terms.
   */
  part(x: TensorInfo, y: TensorInfo, batchRows: number, captureLogits: boolean, apply: GradientSink): FastStepResult {
    return this.#run(x, y, batchRows, undefined, captureLogits, apply);
  }

  #run(x: TensorInfo, y: TensorInfo, batchRows: number, extra: { term: ExtraLoss; x: tf.Tensor2D; y: tf.Tensor2D } | undefined, captureLogits: boolean, apply: GradientSink): FastStepResult {
    const heap = this.#heap;
    const batch = x.shape[0]!;
    const owned: TensorInfo[] = [];
    const grads: (TensorInfo | undefined)[] = new Array(this.#vars.length).fill(undefined);
    /** inputs[i]: what op i read (in its layout); outputs[i]: what it wrote. */
    const inputs: Act[] = [];
    const outputs: Act[] = [];
    try {
      let cur: Act = { info: view(x, x.shape), featureMajor: false, features: x.shape[1]! };
      for (const op of this.#ops) {
        if (cur.featureMajor !== (op.kind === 'dense')) {
          cur = this.#relayout(cur, batch);
          owned.push(cur.info);
        }
        inputs.push(cur);
        const out = this.#forward(op, cur, batch);
        if (out.info.dataId !== cur.info.dataId) owned.push(out.info);
        outputs.push(out);
        cur = out;
      }
      const k = this.#classes;
      const logits = cur;
      const dLogits = heap.alloc(logits.featureMajor ? [k, batch] : [batch, k]);
      let extraGrads: { value: number; vars: (tf.Tensor | null)[] } | undefined;
      let loss: number;
      let captured: Float32Array | null = null;
      try {
        loss = softmaxCrossEntropy(heap.f32(), heap.at(logits.info), heap.at(y), batch, k, heap.at(dLogits), logits.featureMajor, batchRows);
        if (captureLogits || extra !== undefined) captured = this.#readBatchMajor(logits, batch);
        if (extra !== undefined) {
          extraGrads = this.#extraLoss(extra.term, captured!, batch, logits.featureMajor, extra.x, extra.y, dLogits);
          loss += extraGrads.value;
        }
      } catch (err) {
        heap.free(dLogits);
        throw err;
      }
      this.#backward(inputs, outputs, { info: dLogits, featureMajor: logits.featureMajor, features: k }, batch, grads);
      if (extraGrads !== undefined) this.#addVariableGrads(extraGrads.vars, grads);
      apply(grads);
      return { loss, logits: captureLogits ? captured : null };
    } finally {
      heap.free(...owned, ...grads);
    }
  }

  /** The same activation in the other layout (a new tensor the caller owns). */
  #relayout(a: Act, batch: number): Act {
    const [rows, cols] = a.featureMajor ? [a.features, batch] : [batch, a.features];
    return { info: this.#heap.transpose(a.info, rows, cols), featureMajor: !a.featureMajor, features: a.features };
  }

  #forward(op: PlanOp, input: Act, batch: number): Act {
    const heap = this.#heap;
    switch (op.kind) {
      case 'reshape':
        return { info: view(input.info, [batch, ...op.out]), featureMajor: false, features: input.features };
      case 'dense': {
        // out^T [units, batch] = W^T [units, in] x input^T [in, batch], W read in place as [in, units]
        const out = heap.product(op.kernel.variable, input.info, op.units, op.inputs, batch, true);
        if (op.bias !== undefined || op.relu) {
          if (heap.simd !== undefined) heap.simd.biasRelu(heap.at(out) * 4, op.bias === undefined ? 0 : heap.at(op.bias.variable) * 4, op.units, batch, op.relu ? 1 : 0);
          else biasRelu(heap.f32(), heap.at(out), op.bias === undefined ? -1 : heap.at(op.bias.variable), op.units, batch, op.relu);
        }
        return { info: out, featureMajor: true, features: op.units };
      }
      case 'conv2d': {
        const inputs: Record<string, TensorInfo> = { x: view(input.info, [batch, ...op.in]), filter: op.kernel.variable };
        if (op.bias !== undefined) inputs['bias'] = op.bias.variable;
        const info = heap.run('FusedConv2D', inputs, {
          strides: op.strides, pad: op.pad, dataFormat: 'NHWC', dilations: [1, 1], activation: op.relu ? 'relu' : 'linear',
        });
        return { info, featureMajor: false, features: op.out[0] * op.out[1] * op.out[2] };
      }
      case 'maxpool': {
        const info = heap.run('MaxPool', { x: view(input.info, [batch, ...op.in]) }, { filterSize: op.size, strides: op.strides, pad: op.pad });
        return { info, featureMajor: false, features: op.out[0] * op.out[1] * op.out[2] };
      }
    }
  }

  /** Walks the ops backwards from d(loss)/d(logits) (which it frees), filling `grads`. */
  #backward(inputs: Act[], outputs: Act[], dLogits: Act, batch: number, grads: (TensorInfo | undefined)[]): void {
    const heap = this.#heap;
    let g: Act | undefined = dLogits;
    // Set when a pool's fused loop already applied the ReLU mask and bias gradient of the op before it.
    let fusedBelow = false;
    try {
      for (let i = this.#ops.length - 1; i >= this.#firstTrainable && g !== undefined; i--) {
        const op = this.#ops[i]!;
        const fused = fusedBelow;
        fusedBelow = false;
        if (g.featureMajor !== outputs[i]!.featureMajor) {
          const turned = this.#relayout(g, batch);
          heap.free(g.info);
          g = turned;
        }
        if (op.kind === 'reshape') continue;
        let next: TensorInfo | undefined;
        if (op.kind === 'maxpool') {
          const below = this.#ops[i - 1];
          fusedBelow = below !== undefined && (below.kind === 'conv2d' || below.kind === 'dense');
          next = this.#maxPoolBackward(op, below, inputs[i]!.info, g.info, batch, grads);
        } else if (op.kind === 'dense') {
          next = this.#denseBackward(op, inputs[i]!.info, outputs[i]!.info, g.info, batch, grads, i > this.#firstTrainable);
        } else {
          next = this.#convBackward(op, inputs[i]!.info, outputs[i]!.info, g.info, batch, grads, fused, i > this.#firstTrainable);
        }
        heap.free(g.info);
        g = next === undefined ? undefined : { info: next, featureMajor: inputs[i]!.featureMajor, features: inputs[i]!.features };
      }
    } finally {
      heap.free(g?.info);
    }
  }

  #maxPoolBackward(op: PoolOp, below: PlanOp | undefined, input: TensorInfo, g: TensorInfo, batch: number, grads: (TensorInfo | undefined)[]): TensorInfo {
    const heap = this.#heap;
    const fuse = below !== undefined && (below.kind === 'conv2d' || below.kind === 'dense');
    let dBias: TensorInfo | undefined;
    if (fuse && below.bias !== undefined && below.bias.index >= 0) {
      dBias = heap.alloc(below.bias.variable.shape);
      grads[below.bias.index] = dBias;
    }
    const dx = heap.alloc([batch, ...op.in]);
    const [padTop, padLeft] = poolPadding(op);
    const relu = fuse && below.relu;
    const simd = heap.simd;
    // The SIMD loop covers 2x2 windows at stride 2 that start at (0, 0) and stay inside the input.
    if (simd !== undefined && op.size[0] === 2 && op.size[1] === 2 && op.strides[0] === 2 && op.strides[1] === 2
      && padTop === 0 && padLeft === 0 && op.out[0] === op.in[0] >> 1 && op.out[1] === op.in[1] >> 1 && op.in[2] % 4 === 0) {
      const h = heap.f32();
      h.fill(0, heap.at(dx), heap.at(dx) + batch * op.in[0] * op.in[1] * op.in[2]);
      if (dBias !== undefined) h.fill(0, heap.at(dBias), heap.at(dBias) + op.in[2]);
      simd.maxPool2x2Grad(heap.at(input) * 4, heap.at(g) * 4, heap.at(dx) * 4, dBias === undefined ? 0 : heap.at(dBias) * 4,
        batch, op.in[0], op.in[1], op.in[2], relu ? 1 : 0);
      return dx;
    }
    maxPoolReluGrad(heap.f32(), heap.at(input), heap.at(g), heap.at(dx), {
      batch, inH: op.in[0], inW: op.in[1], channels: op.in[2], outH: op.out[0], outW: op.out[1],
      sizeH: op.size[0], sizeW: op.size[1], strideH: op.strides[0], strideW: op.strides[1], padTop, padLeft,
    }, relu, dBias === undefined ? -1 : heap.at(dBias));
    return dx;
  }

  /** Feature-major: input [in, batch], output and g [units, batch]; returns d(input) [in, batch] if `needInput`. */
  #denseBackward(op: DenseOp, input: TensorInfo, output: TensorInfo, g: TensorInfo, batch: number, grads: (TensorInfo | undefined)[], needInput: boolean): TensorInfo | undefined {
    const heap = this.#heap;
    const simd = heap.simd;
    if (op.relu) {
      if (simd !== undefined) simd.reluGrad(heap.at(g) * 4, heap.at(output) * 4, op.units * batch);
      else reluGrad(heap.f32(), heap.at(g), heap.at(output), op.units * batch);
    }
    if (op.bias !== undefined && op.bias.index >= 0) {
      const dBias = heap.alloc([op.units]);
      grads[op.bias.index] = dBias;
      if (simd !== undefined) simd.rowSums(heap.at(g) * 4, op.units, batch, heap.at(dBias) * 4);
      else rowSums(heap.f32(), heap.at(g), op.units, batch, heap.at(dBias));
    }
    if (op.kernel.index >= 0) {
      // dW [in, units] = input^T [in, batch] x g [batch, units]
      const gT = heap.transpose(g, op.units, batch);
      try {
        grads[op.kernel.index] = heap.product(input, gT, op.inputs, batch, op.units);
      } finally {
        heap.free(gT);
      }
    }
    if (!needInput) return undefined;
    // d(input)^T [in, batch] = W [in, units] x g^T [units, batch]
    return heap.product(op.kernel.variable, g, op.inputs, op.units, batch);
  }

  /** Batch-major (NHWC); returns d(input) if `needInput`. */
  #convBackward(op: ConvOp, input: TensorInfo, output: TensorInfo, g: TensorInfo, batch: number, grads: (TensorInfo | undefined)[], fused: boolean, needInput: boolean): TensorInfo | undefined {
    const heap = this.#heap;
    const rows = batch * op.out[0] * op.out[1];
    const cols = op.out[2];
    if (!fused) {
      if (op.relu && heap.simd !== undefined) heap.simd.reluGrad(heap.at(g) * 4, heap.at(output) * 4, rows * cols);
      else if (op.relu) reluGrad(heap.f32(), heap.at(g), heap.at(output), rows * cols);
      if (op.bias !== undefined && op.bias.index >= 0) {
        const dBias = heap.alloc([cols]);
        grads[op.bias.index] = dBias;
        columnSums(heap.f32(), heap.at(g), rows, cols, heap.at(dBias));
      }
    }
    const x4 = view(input, [batch, ...op.in]);
    const g4 = view(g, [batch, ...op.out]);
    if (op.kernel.index >= 0) {
      grads[op.kernel.index] = heap.run('Conv2DBackpropFilter', { x: x4, dy: g4 }, {
        strides: op.strides, pad: op.pad, dataFormat: 'NHWC', filterShape: [op.kh, op.kw, op.in[2], op.out[2]],
      });
    }
    if (!needInput) return undefined;
    return heap.run('Conv2DBackpropInput', { dy: g4, filter: op.kernel.variable }, {
      strides: op.strides, pad: op.pad, dataFormat: 'NHWC', inputShape: [batch, ...op.in],
    });
  }

  /** The logits as [batch, classes] floats. */
  #readBatchMajor(logits: Act, batch: number): Float32Array {
    const h = this.#heap.f32();
    const o = this.#heap.at(logits.info);
    const k = this.#classes;
    if (!logits.featureMajor) return Float32Array.from(h.subarray(o, o + batch * k));
    const out = new Float32Array(batch * k);
    for (let c = 0; c < k; c++) for (let b = 0; b < batch; b++) out[b * k + c] = h[o + c * batch + b]!;
    return out;
  }

  /** Value of the extra loss term, with its gradient added into dLogits and returned for the variables. */
  #extraLoss(extra: ExtraLoss, logitsBm: Float32Array, batch: number, featureMajor: boolean, x: tf.Tensor2D, y: tf.Tensor2D, dLogits: TensorInfo): { value: number; vars: (tf.Tensor | null)[] } {
    const heap = this.#heap;
    const k = this.#classes;
    const logitsT = tf.tensor2d(logitsBm, [batch, k], 'float32');
    try {
      const xs = [logitsT, ...this.#vars];
      const { value, grads } = tf.engine().gradients(() => extra(logitsT, { x, y }), xs, undefined, true);
      const v = value.dataSync()[0]!;
      value.dispose();
      const dl = grads[0];
      if (dl !== null && dl !== undefined) {
        const h = heap.f32();
        const o = heap.at(dLogits);
        const s = heap.at(dl);
        for (let b = 0; b < batch; b++) {
          for (let c = 0; c < k; c++) {
            const at = featureMajor ? o + c * batch + b : o + b * k + c;
            h[at] = h[at]! + h[s + b * k + c]!;
          }
        }
        dl.dispose();
      }
      return { value: v, vars: grads.slice(1) as (tf.Tensor | null)[] };
    } finally {
      logitsT.dispose();
    }
  }

  #addVariableGrads(extra: (tf.Tensor | null)[], grads: (TensorInfo | undefined)[]): void {
    const heap = this.#heap;
    extra.forEach((t, k) => {
      if (t === null || t === undefined) return;
      const mine = grads[k];
      if (mine === undefined) {
        // Only the extra term reaches this variable: keep its gradient as ours.
        const copy = heap.alloc(t.shape);
        heap.f32().copyWithin(heap.at(copy), heap.at(t), heap.at(t) + t.size);
        grads[k] = copy;
      } else {
        const h = heap.f32();
        const o = heap.at(mine);
        const s = heap.at(t);
        for (let i = 0; i < t.size; i++) h[o + i] = h[o + i]! + h[s + i]!;
      }
      t.dispose();
    });
  }
}

function poolPadding(op: PoolOp): [number, number] {
  if (op.pad === 'valid') return [0, 0];
  const padH = Math.max(0, (op.out[0] - 1) * op.strides[0] + op.size[0] - op.in[0]);
  const padW = Math.max(0, (op.out[1] - 1) * op.strides[1] + op.size[1] - op.in[1]);
  return [Math.floor(padH / 2), Math.floor(padW / 2)];
}
