import { softmaxCrossEntropy } from '../fast-step/heap-loops.js';
import type { SimdKernels } from '../wasm-simd/simd-kernels.js';
import type { PlanSpec } from './plan-spec.js';

/** One dense layer of a plan, by slot: weights are read where the step plan says they are. */
interface DenseLayer {
  inputs: number;
  units: number;
  relu: boolean;
  kernelSlot: number;
  /** -1: no bias. */
  biasSlot: number;
  /** First float of the kernel's (bias's) gradient in a gradient area; -1 when frozen. */
  kernelGrad: number;
  biasGrad: number;
}

/** Where one thread's part of a step works: byte offsets on the shared heap. */
export interface DensePartArgs {
  /** The part's rows of x [rows, inputSize] (floats, or bytes through `table`) and y [rows, classes]. */
  x: number;
  /** 0: x is floats; else the byte offset of 256 floats, x's bytes' values. */
  table: number;
  y: number;
  rows: number;
  /** Rows of the whole batch (the loss divisor). */
  batchRows: number;
  /** Where to write the part's logits [rows, classes] (0: not asked). */
  logits: number;
  /** This thread's gradient area (the plan's layout) and scratch (`DensePart.scratchFloats(rows)` floats). */
  gradArea: number;
  scratch: number;
  /** Byte offset of each slot's weights. */
  weight: (slot: number) => number;
}

/**
 * A plan of dense layers only (the MLP), as one thread's part of a
 * data-parallel step run wholly on the main thread's shared heap with
 * Strata's SIMD kernels: every thread reads the weights where they lie,
 * works in its own scratch there and writes its gradient straight into its
 * gradient area. No tensor is allocated or freed and nothing is copied, so
 * the main thread and every helper run exactly this, from the same
 * offsets. The arithmetic is the fast step's (feature-major activations,
 * the same GEMM, bias, ReLU and loss loops in the same order).
 */
export class DensePart {
  readonly #layers: DenseLayer[];
  readonly #inputSize: number;
  readonly #classes: number;
  readonly #firstTrainable: number;
  readonly #kernels: SimdKernels;
  readonly #f32: () => Float32Array;

  private constructor(layers: DenseLayer[], spec: PlanSpec, kernels: SimdKernels, f32: () => Float32Array) {
    this.#layers = layers;
    this.#inputSize = spec.inputSize;
    this.#classes = spec.classes;
    this.#firstTrainable = layers.findIndex((l) => l.kernelGrad >= 0 || l.biasGrad >= 0);
    this.#kernels = kernels;
    this.#f32 = f32;
  }

  /** The plan as a dense part, or undefined if it holds anything but dense layers (and flat reshapes). */
  static of(spec: PlanSpec, kernels: SimdKernels, f32: () => Float32Array): DensePart | undefined {
    const layers: DenseLayer[] = [];
    const gradOf = (slot: number): number => spec.params[slot]!.gradOffset;
    for (const op of spec.ops) {
      if (op.kind === 'reshape' && op.out.length === 1) continue;
      if (op.kind !== 'dense') return undefined;
      layers.push({
        inputs: op.inputs, units: op.units, relu: op.relu, kernelSlot: op.kernel, biasSlot: op.bias ?? -1,
        kernelGrad: gradOf(op.kernel), biasGrad: op.bias === undefined ? -1 : gradOf(op.bias),
      });
    }
    if (layers.length === 0 || layers.every((l) => l.kernelGrad < 0 && l.biasGrad < 0)) return undefined;
    return new DensePart(layers, spec, kernels, f32);
  }

  /** Scratch floats a part of `rows` rows needs: x^T, each layer's output and output gradient, one transposed gradient. */
  scratchFloats(rows: number): number {
    let n = this.#inputSize * rows;
    let widest = 0;
    for (const l of this.#layers) {
      n += 2 * l.units * rows;
      widest = Math.max(widest, l.units);
    }
    return n + widest * rows;
  }

  /** The part's loss (divided by the whole batch's rows); its gradient is in `gradArea`, its logits at `logits` if asked. */
  run(a: DensePartArgs): number {
    const k = this.#kernels;
    const layers = this.#layers;
    const R = a.rows;
    // Scratch: x^T [in, R], then per layer out [units, R] and dOut [units, R], then g^T [R, widest].
    let at = a.scratch;
    const xT = at;
    at += 4 * this.#inputSize * R;
    const outs: number[] = [];
    const dOuts: number[] = [];
    for (const l of layers) {
      outs.push(at);
      at += 4 * l.units * R;
      dOuts.push(at);
      at += 4 * l.units * R;
    }
    const gT = at;
    if (a.table === 0) k.transpose(a.x, xT, R, this.#inputSize);
    else k.bytesToFloatsT(a.x, a.table, xT, R, this.#inputSize);
    let input = xT;
    layers.forEach((l, i) => {
      // out^T [units, R] = W^T [units, in] x input^T [in, R], W read in place as [in, units]
      k.gemm(a.weight(l.kernelSlot), input, outs[i]!, l.units, l.inputs, R, l.units, R, R, 1);
      if (l.biasSlot >= 0 || l.relu) k.biasRelu(outs[i]!, l.biasSlot >= 0 ? a.weight(l.biasSlot) : 0, l.units, R, l.relu ? 1 : 0);
      input = outs[i]!;
    });
    const last = layers.length - 1;
    const K = this.#classes;
    const h = this.#f32();
    const loss = softmaxCrossEntropy(h, outs[last]! >>> 2, a.y >>> 2, R, K, dOuts[last]! >>> 2, true, a.batchRows);
    if (a.logits !== 0) k.transpose(outs[last]!, a.logits, K, R);
    for (let i = last; i >= this.#firstTrainable; i--) {
      const l = layers[i]!;
      const g = dOuts[i]!;
      const inp = i === 0 ? xT : outs[i - 1]!;
      if (l.relu) k.reluGrad(g, outs[i]!, l.units * R);
      if (l.biasGrad >= 0) k.rowSums(g, l.units, R, a.gradArea + 4 * l.biasGrad);
      if (l.kernelGrad >= 0) {
        // dW [in, units] = input^T [in, R] x g^T [R, units]
        k.transpose(g, gT, l.units, R);
        k.gemm(inp, gT, a.gradArea + 4 * l.kernelGrad, l.inputs, R, l.units, R, l.units, l.units, 0);
      }
      // d(input)^T [in, R] = W [in, units] x g [units, R]
      if (i > this.#firstTrainable) k.gemm(a.weight(l.kernelSlot), g, dOuts[i - 1]!, l.inputs, l.units, R, l.units, R, R, 0);
    }
    return loss;
  }
}
