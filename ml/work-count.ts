/**
 * Counted work: the floating-point operations (FLOPs) a tfjs `LayersModel`
 * does per sample, for inference and for training, and what an optimizer
 * step adds. A device profile prices FLOPs (its compute's FLOP/s and
 * J/FLOP), so the same training run costs the same device seconds and
 * joules on any host, whatever the host's speed or load.
 *
 * Convention (FedScale's 3x, stated once here and used everywhere):
 * - A multiply-add is 2 FLOPs; an addition, comparison, division or
 *   elementary function (exp, sqrt) is 1.
 * - Forward FLOPs of a layer: its products and sums, its bias, its
 *   activation (per element: see `ACTIVATION_FLOPS`).
 * - Backward FLOPs: 2x the layer's training-mode forward FLOPs for a layer
 *   with trainable weights (the gradient with respect to its input and to its
 *   weights, each costing about a forward pass), 1x for a layer without.
 *   The first weight layer's input gradient is counted too, although tfjs
 *   prunes it: the reference host's FLOP/s figure is measured under the same
 *   convention, so prices stay consistent.
 * - Pooling: poolH x poolW per output element (the comparisons, or the
 *   additions and the average's division); global pooling: one per input
 *   element. Reshape, Flatten and the input layer are free.
 * - Batch normalization: 4 per element to normalize (subtract, scale by
 *   1/std, gamma, beta); in training 4 more for the batch mean and variance.
 *   Dropout: free at inference, 1 per element in training (the mask).
 * - The loss (softmax cross-entropy, ~10 FLOPs per logit) and extra loss
 *   terms (DER++, FedProx) are not counted: under 0.1% of any model here.
 * - Optimizer step, per trainable parameter: SGD 2 (scale, subtract); Adam 14
 *   (two moment updates 3 + 4, two bias corrections 2, the update 5).
 */
import type * as tf from '@tensorflow/tfjs';
import { StrataError } from '../common/strata-error.js';
import type { OptimizerKind } from './trainer.js';

/** FLOPs per element of each activation function (tfjs's serialized names). */
export const ACTIVATION_FLOPS: Readonly<Record<string, number>> = Object.freeze({
  linear: 0, relu: 1, relu6: 2, thresholdedRelu: 1, leakyRelu: 2, prelu: 2, hardSigmoid: 3,
  elu: 4, selu: 4, sigmoid: 4, tanh: 4, softplus: 4, softsign: 4, swish: 5, mish: 6, gelu: 8, gelu_new: 8, softmax: 5,
});

/** Optimizer FLOPs per trainable parameter per step. */
export const OPTIMIZER_FLOPS_PER_PARAM: Readonly<Record<OptimizerKind, number>> = Object.freeze({ sgd: 2, adam: 14 });

/** What one layer costs per sample. */
export interface LayerWork {
  readonly name: string;
  readonly className: string;
  /** Output shape of one sample (batch dimension dropped). */
  readonly outputShape: readonly number[];
  /** Trainable scalars of the layer. */
  readonly params: number;
  /** Inference forward FLOPs per sample. */
  readonly forwardFlops: number;
  /** Training FLOPs per sample: training-mode forward plus backward. */
  readonly trainingFlops: number;
}

/** What a model costs per sample. */
export interface ModelWork {
  readonly layers: readonly LayerWork[];
  /** Inference FLOPs per sample (evaluation, validation). */
  readonly forwardFlopsPerSample: number;
  /** Training FLOPs per sample: forward + backward (see the convention above). */
  readonly trainingFlopsPerSample: number;
  /** Trainable scalars: what an optimizer step updates. */
  readonly trainableParams: number;
}

/** The layer classes `countModelWork` knows. */
export const COUNTED_LAYER_CLASSES: readonly string[] = Object.freeze([
  'InputLayer', 'Dense', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'MaxPooling2D', 'AveragePooling2D',
  'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Flatten', 'Reshape', 'Dropout', 'BatchNormalization',
  'Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'ThresholdedReLU', 'Softmax', 'Sequential', 'Model', 'Functional',
]);

/** Activation layers by class: the activation each applies. */
const ACTIVATION_LAYERS: Readonly<Record<string, string>> = Object.freeze({
  ReLU: 'relu', LeakyReLU: 'leakyRelu', PReLU: 'prelu', ELU: 'elu', ThresholdedReLU: 'thresholdedRelu', Softmax: 'softmax',
});

type Shape = readonly number[];

interface Counted {
  forward: number;
  /** Training-mode forward (differs from inference for batch norm and dropout). */
  trainForward: number;
}

function product(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A symbolic shape without its batch dimension; every other dimension must be known. */
function sampleShape(layer: tf.layers.Layer, shape: readonly (number | null)[], what: string): number[] {
  const dims = shape.slice(1);
  if (dims.some((d) => d === null || !Number.isFinite(d))) {
    throw new StrataError('STRATA_ERR_WORK_UNKNOWN_SHAPE', `cannot count the work of layer '${layer.name}' (${layer.getClassName()}): its ${what} shape ${JSON.stringify(shape)} has an unknown dimension`, {
      layer: layer.name, className: layer.getClassName(),
    });
  }
  return dims as number[];
}

function singleShape(layer: tf.layers.Layer, which: 'input' | 'output'): number[] {
  const raw = which === 'input' ? (layer.input as tf.SymbolicTensor | tf.SymbolicTensor[]) : (layer.output as tf.SymbolicTensor | tf.SymbolicTensor[]);
  if (Array.isArray(raw)) {
    throw new StrataError('STRATA_ERR_WORK_UNKNOWN_LAYER', `cannot count the work of layer '${layer.name}' (${layer.getClassName()}): it has ${raw.length} ${which}s; only single-${which} layers are counted`, {
      layer: layer.name, className: layer.getClassName(),
    });
  }
  return sampleShape(layer, raw.shape, which);
}

function activationFlops(layer: tf.layers.Layer, name: unknown): number {
  const key = typeof name === 'string' ? name : 'linear';
  const flops = ACTIVATION_FLOPS[key];
  if (flops === undefined) {
    throw new StrataError('STRATA_ERR_WORK_UNKNOWN_ACTIVATION', `cannot count the work of layer '${layer.name}' (${layer.getClassName()}): unknown activation '${key}' (known: ${Object.keys(ACTIVATION_FLOPS).join(', ')})`, {
      layer: layer.name, className: layer.getClassName(), activation: key,
    });
  }
  return flops;
}

/** Channels-last [H, W, C] of a conv or pooling shape. */
function hwc(shape: Shape, dataFormat: unknown): [number, number, number] {
  const [a, b, c] = shape as [number, number, number];
  return dataFormat === 'channelsFirst' ? [b, c, a] : [a, b, c];
}

function pair(v: unknown): [number, number] {
  if (Array.isArray(v)) return [Number(v[0]), Number(v[1] ?? v[0])];
  return [Number(v), Number(v)];
}

function same(forward: number): Counted {
  return { forward, trainForward: forward };
}

/** Forward FLOPs per sample of one (non-model) layer. */
function countLayer(layer: tf.layers.Layer): Counted {
  const cls = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  const bias = config['useBias'] === false ? 0 : 1;
  switch (cls) {
    case 'InputLayer':
    case 'Flatten':
    case 'Reshape':
      return same(0);
    case 'Dense': {
      const input = singleShape(layer, 'input');
      const inner = input[input.length - 1]!;
      const rows = product(input.slice(0, -1));
      const units = Number(config['units']);
      return same(rows * units * (2 * inner + bias + activationFlops(layer, config['activation'])));
    }
    case 'Conv2D': {
      const [, , ci] = hwc(singleShape(layer, 'input'), config['dataFormat']);
      const out = singleShape(layer, 'output');
      const [kh, kw] = pair(config['kernelSize']);
      return same(product(out) * (2 * kh * kw * ci + bias + activationFlops(layer, config['activation'])));
    }
    case 'DepthwiseConv2D': {
      const out = singleShape(layer, 'output');
      const [kh, kw] = pair(config['kernelSize']);
      return same(product(out) * (2 * kh * kw + bias + activationFlops(layer, config['activation'])));
    }
    case 'SeparableConv2D': {
      const [, , ci] = hwc(singleShape(layer, 'input'), config['dataFormat']);
      const [ho, wo, co] = hwc(singleShape(layer, 'output'), config['dataFormat']);
      const [kh, kw] = pair(config['kernelSize']);
      const dm = Number(config['depthMultiplier'] ?? 1);
      const depthwise = ho * wo * ci * dm * 2 * kh * kw;
      const pointwise = ho * wo * co * (2 * ci * dm + bias + activationFlops(layer, config['activation']));
      return same(depthwise + pointwise);
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const [ph, pw] = pair(config['poolSize']);
      return same(product(singleShape(layer, 'output')) * ph * pw);
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      return same(product(singleShape(layer, 'input')));
    case 'Dropout':
      return { forward: 0, trainForward: product(singleShape(layer, 'output')) };
    case 'BatchNormalization': {
      const n = product(singleShape(layer, 'output'));
      return { forward: 4 * n, trainForward: 8 * n };
    }
    case 'Activation':
      return same(product(singleShape(layer, 'output')) * activationFlops(layer, config['activation']));
    default: {
      const activation = ACTIVATION_LAYERS[cls];
      if (activation !== undefined) return same(product(singleShape(layer, 'output')) * activationFlops(layer, activation));
      throw new StrataError('STRATA_ERR_WORK_UNKNOWN_LAYER', `cannot count the work of layer '${layer.name}' (class ${cls}); counted classes: ${COUNTED_LAYER_CLASSES.join(', ')}`, {
        layer: layer.name, className: cls,
      });
    }
  }
}

function trainableParams(layer: tf.layers.Layer): number {
  return layer.trainableWeights.reduce((n, w) => n + product(w.shape as number[]), 0);
}

function isModel(layer: tf.layers.Layer): layer is tf.LayersModel {
  return Array.isArray((layer as Partial<tf.LayersModel>).layers);
}

function collect(model: tf.LayersModel, out: LayerWork[]): void {
  for (const layer of model.layers) {
    if (isModel(layer)) {
      collect(layer, out);
      continue;
    }
    const c = countLayer(layer);
    const params = trainableParams(layer);
    const backward = (params > 0 ? 2 : 1) * c.trainForward;
    const output = layer.output as tf.SymbolicTensor | tf.SymbolicTensor[];
    const outputShape = Array.isArray(output) ? [] : output.shape.slice(1).map((d) => d ?? 0);
    out.push(Object.freeze({
      name: layer.name, className: layer.getClassName(), outputShape: Object.freeze(outputShape), params,
      forwardFlops: c.forward, trainingFlops: c.trainForward + backward,
    }));
  }
}

/**
 * The work of `model` per sample, layer by layer (nested models are
 * flattened into their layers).
 *
 * @throws StrataError `STRATA_ERR_WORK_UNKNOWN_LAYER` for a layer class it
 *   does not know (details: `layer`, `className`), and
 *   `STRATA_ERR_WORK_UNKNOWN_ACTIVATION` for an unknown activation.
 */
export function countModelWork(model: tf.LayersModel): ModelWork {
  const layers: LayerWork[] = [];
  collect(model, layers);
  const sum = (f: (l: LayerWork) => number): number => layers.reduce((n, l) => n + f(l), 0);
  return Object.freeze({
    layers: Object.freeze(layers),
    forwardFlopsPerSample: sum((l) => l.forwardFlops),
    trainingFlopsPerSample: sum((l) => l.trainingFlops),
    trainableParams: sum((l) => l.params),
  });
}

/** Optimizer FLOPs of one step over `params` trainable parameters. */
export function optimizerStepFlops(optimizer: OptimizerKind, params: number): number {
  const perParam = OPTIMIZER_FLOPS_PER_PARAM[optimizer];
  if (perParam === undefined) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `no FLOP count for optimizer '${String(optimizer)}' (known: ${Object.keys(OPTIMIZER_FLOPS_PER_PARAM).join(', ')})`, { option: 'optimizer' });
  }
  return perParam * params;
}

/** What training one model with one optimizer costs: per sample and per step. */
export interface TrainingWork {
  readonly model: ModelWork;
  readonly optimizer: OptimizerKind;
  /** The optimizer's FLOPs per step (whatever the batch size). */
  readonly optimizerFlopsPerStep: number;
}

export function trainingWork(model: tf.LayersModel | ModelWork, optimizer: OptimizerKind): TrainingWork {
  const work = 'trainingFlopsPerSample' in model ? model : countModelWork(model);
  return Object.freeze({ model: work, optimizer, optimizerFlopsPerStep: optimizerStepFlops(optimizer, work.trainableParams) });
}

/** FLOPs of `steps` training steps over `samples` samples in all (stream and replay). */
export function trainingFlops(work: TrainingWork, samples: number, steps: number): number {
  return samples * work.model.trainingFlopsPerSample + steps * work.optimizerFlopsPerStep;
}

/** FLOPs of a forward pass (evaluation) over `samples` samples. */
export function inferenceFlops(work: ModelWork | TrainingWork, samples: number): number {
  const m = 'model' in work ? work.model : work;
  return samples * m.forwardFlopsPerSample;
}
