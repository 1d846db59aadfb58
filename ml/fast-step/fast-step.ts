import * as tf from '@tensorflow/tfjs';
import { columnSums, maxPoolReluGrad, reluGrad, softmaxCrossEntropy } from './heap-loops.js';
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
 * One training step of a planned layer chain, by hand on the wasm heap:
 * forward with XNNPACK's fused kernels (bias and ReLU inside the matMul or
 * convolution), softmax cross-entropy and its gradient in one loop, and a
 * backward pass that calls the gradient kernels directly — no autograd
 * tape, no saved-tensor copies, no engine bookkeeping. Pool, ReLU and bias
 * gradients are one fused loop. Same arithmetic as tfjs's autograd, so
 * losses and weights agree to float rounding.
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
    const heap = this.#heap;
    const batch = x.shape[0];
    const acts: TensorInfo[] = [view(x, x.shape)];
    const owned: TensorInfo[] = [];
    const grads: (TensorInfo | undefined)[] = new Array(this.#vars.length).fill(undefined);
    try {
      for (const op of this.#ops) {
        const out = this.#forward(op, acts[acts.length - 1]!, batch);
        if (out.dataId !== acts[acts.length - 1]!.dataId) owned.push(out);
        acts.push(out);
      }
      const logits = acts[acts.length - 1]!;
      const k = this.#classes;
      const dLogits = heap.alloc([batch, k]);
      let extraGrads: { value: number; vars: (tf.Tensor | null)[] } | undefined;
      let loss: number;
      let captured: Float32Array | null;
      try {
        loss = softmaxCrossEntropy(heap.f32(), heap.at(logits), heap.at(y), batch, k, heap.at(dLogits));
        captured = captureLogits ? Float32Array.from(heap.f32().subarray(heap.at(logits), heap.at(logits) + batch * k)) : null;
        if (extra !== undefined) {
          extraGrads = this.#extraLoss(extra, logits, x, y, dLogits);
          loss += extraGrads.value;
        }
      } catch (err) {
        heap.free(dLogits);
        throw err;
      }
      this.#backward(acts, dLogits, batch, grads);
      if (extraGrads !== undefined) this.#addVariableGrads(extraGrads.vars, grads);
      apply(grads);
      return { loss, logits: captured };
    } finally {
      heap.free(...owned, ...grads);
    }
  }

  #forward(op: PlanOp, input: TensorInfo, batch: number): TensorInfo {
    const heap = this.#heap;
    switch (op.kind) {
      case 'reshape':
        return view(input, [batch, ...op.out]);
      case 'dense': {
        const inputs: Record<string, TensorInfo> = { a: view(input, [1, batch, op.inputs]), b: view(op.kernel.variable, [1, op.inputs, op.units]) };
        if (op.bias !== undefined) inputs['bias'] = op.bias.variable;
        const out = heap.run('_FusedMatMul', inputs, { transposeA: false, transposeB: false, activation: op.relu ? 'relu' : 'linear' });
        return view(out, [batch, op.units]);
      }
      case 'conv2d': {
        const inputs: Record<string, TensorInfo> = { x: view(input, [batch, ...op.in]), filter: op.kernel.variable };
        if (op.bias !== undefined) inputs['bias'] = op.bias.variable;
        return heap.run('FusedConv2D', inputs, {
          strides: op.strides, pad: op.pad, dataFormat: 'NHWC', dilations: [1, 1], activation: op.relu ? 'relu' : 'linear',
        });
      }
      case 'maxpool':
        return heap.run('MaxPool', { x: view(input, [batch, ...op.in]) }, { filterSize: op.size, strides: op.strides, pad: op.pad });
    }
  }

  /** Walks the ops backwards from d(loss)/d(logits) (which it frees), filling `grads`. */
  #backward(acts: TensorInfo[], dLogits: TensorInfo, batch: number, grads: (TensorInfo | undefined)[]): void {
    const heap = this.#heap;
    let g: TensorInfo | undefined = dLogits;
    // Set when a pool's fused loop already applied the ReLU mask and bias gradient of the op before it.
    let fusedBelow = false;
    try {
      for (let i = this.#ops.length - 1; i >= this.#firstTrainable && g !== undefined; i--) {
        const op = this.#ops[i]!;
        const fused = fusedBelow;
        fusedBelow = false;
        if (op.kind === 'reshape') continue;
        let next: TensorInfo | undefined;
        if (op.kind === 'maxpool') {
          const below = this.#ops[i - 1];
          fusedBelow = below !== undefined && (below.kind === 'conv2d' || below.kind === 'dense');
          next = this.#maxPoolBackward(op, below, acts[i]!, g, batch, grads);
        } else {
          next = this.#layerBackward(op, acts[i]!, acts[i + 1]!, g, batch, grads, fused, i > this.#firstTrainable);
        }
        heap.free(g);
        g = next;
      }
    } finally {
      heap.free(g);
    }
  }

  #maxPoolBackward(op: Extract<PlanOp, { kind: 'maxpool' }>, below: PlanOp | undefined, input: TensorInfo, g: TensorInfo, batch: number, grads: (TensorInfo | undefined)[]): TensorInfo {
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
    if (simd !== undefined && op.size[0] === 2 && op.size[1] === 2 && op.strides[0] === 2 && op.strides[1] === 2
      && padTop === 0 && padLeft === 0 && op.in[2] % 4 === 0) {
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

  /** Gradients of a dense or conv layer's weights into `grads`; returns the gradient of its input if `needInput`. */
  #layerBackward(
    op: Extract<PlanOp, { kind: 'dense' | 'conv2d' }>, input: TensorInfo, output: TensorInfo, g: TensorInfo, batch: number,
    grads: (TensorInfo | undefined)[], fused: boolean, needInput: boolean,
  ): TensorInfo | undefined {
    const heap = this.#heap;
    const rows = op.kind === 'dense' ? batch : batch * op.out[0] * op.out[1];
    const cols = op.kind === 'dense' ? op.units : op.out[2];
    if (!fused) {
      if (op.relu && heap.simd !== undefined) heap.simd.reluGrad(heap.at(g) * 4, heap.at(output) * 4, rows * cols);
      else if (op.relu) reluGrad(heap.f32(), heap.at(g), heap.at(output), rows * cols);
      if (op.bias !== undefined && op.bias.index >= 0) {
        const dBias = heap.alloc([cols]);
        grads[op.bias.index] = dBias;
        columnSums(heap.f32(), heap.at(g), rows, cols, heap.at(dBias));
      }
    }
    if (op.kind === 'dense') {
      if (op.kernel.index >= 0) {
        const aT = heap.transpose(input, batch, op.inputs);
        try {
          grads[op.kernel.index] = view(heap.matMul(aT, g, op.inputs, batch, op.units), [op.inputs, op.units]);
        } finally {
          heap.free(aT);
        }
      }
      if (!needInput) return undefined;
      const wT = heap.transpose(op.kernel.variable, op.inputs, op.units);
      try {
        return view(heap.matMul(g, wT, batch, op.units, op.inputs), [batch, op.inputs]);
      } finally {
        heap.free(wT);
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

  /** Value of the extra loss term, with its gradient added into dLogits and returned for the variables. */
  #extraLoss(extra: ExtraLoss, logits: TensorInfo, x: tf.Tensor2D, y: tf.Tensor2D, dLogits: TensorInfo): { value: number; vars: (tf.Tensor | null)[] } {
    const heap = this.#heap;
    (heap.backend as unknown as { incRef(dataId: object): void }).incRef(logits.dataId);
    const logitsT = heap.toTensor<tf.Rank.R2>(logits);
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
        for (let i = 0; i < dl.size; i++) h[o + i] = h[o + i]! + h[s + i]!;
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

function poolPadding(op: Extract<PlanOp, { kind: 'maxpool' }>): [number, number] {
  if (op.pad === 'valid') return [0, 0];
  const padH = Math.max(0, (op.out[0] - 1) * op.strides[0] + op.size[0] - op.in[0]);
  const padW = Math.max(0, (op.out[1] - 1) * op.strides[1] + op.size[1] - op.in[1]);
  return [Math.floor(padH / 2), Math.floor(padW / 2)];
}
