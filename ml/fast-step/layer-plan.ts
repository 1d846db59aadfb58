import type * as tf from '@tensorflow/tfjs';

/** Where a layer's weight sits in the trainer's variable list (-1: frozen). */
export interface ParamRef {
  index: number;
  variable: tf.Variable;
}

export type PlanOp =
  | { kind: 'reshape'; out: number[] }
  | { kind: 'dense'; inputs: number; units: number; relu: boolean; kernel: ParamRef; bias: ParamRef | undefined; out: number[] }
  | {
      kind: 'conv2d'; in: [number, number, number]; out: [number, number, number]; kh: number; kw: number;
      strides: [number, number]; pad: 'same' | 'valid'; relu: boolean; kernel: ParamRef; bias: ParamRef | undefined;
    }
  | { kind: 'maxpool'; in: [number, number, number]; out: [number, number, number]; size: [number, number]; strides: [number, number]; pad: 'same' | 'valid' };

export type LayerPlan = { ok: true; ops: PlanOp[]; inputSize: number; outputSize: number } | { ok: false; reason: string };

interface LayerLike {
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  outputShape: unknown;
  trainableWeights: tf.LayerVariable[];
  weights: tf.LayerVariable[];
  inboundNodes: { inboundLayers: unknown[] }[];
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

/**
 * Reads a model as a chain the fast step can run by hand: Dense and Conv2D
 * (linear or ReLU, NHWC, no dilation), MaxPooling2D, Flatten and Reshape,
 * each fed by the one before. Anything else (other layers or activations,
 * branches, several inputs) is `ok: false` with the reason, and the trainer
 * keeps tfjs's autograd for that model.
 */
export function planLayers(model: tf.LayersModel, vars: readonly tf.Variable[]): LayerPlan {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return { ok: false, reason: 'not a single-input, single-output model' };
  const inShape = model.inputs[0]!.shape.slice(1);
  const inputSize = inShape[0];
  if (inShape.length !== 1 || inputSize === null || inputSize === undefined) return { ok: false, reason: 'input is not a flat feature vector' };
  const trainable = model.trainableWeights;
  const ref = (w: tf.LayerVariable | undefined): ParamRef | undefined => {
    if (w === undefined) return undefined;
    const index = trainable.indexOf(w);
    return { index, variable: index >= 0 ? vars[index]! : (w.read() as tf.Variable) };
  };
  const ops: PlanOp[] = [];
  let shape: number[] = [inputSize];
  let previous: unknown;
  for (const layer of model.layers as unknown as LayerLike[]) {
    const name = layer.getClassName();
    if (name === 'InputLayer') {
      previous = layer;
      continue;
    }
    const inbound = layer.inboundNodes;
    if (inbound.length !== 1 || inbound[0]!.inboundLayers.length !== 1 || (previous !== undefined && inbound[0]!.inboundLayers[0] !== previous)) {
      return { ok: false, reason: `layer ${name} is not fed by the layer before it` };
    }
    previous = layer;
    const cfg = layer.getConfig();
    const out = (layer.outputShape as (number | null)[]).slice(1) as number[];
    if (out.some((d) => d === null)) return { ok: false, reason: `layer ${name} has an unknown output shape` };
    const activation = cfg['activation'] ?? 'linear';
    if (activation !== 'linear' && activation !== 'relu') return { ok: false, reason: `activation ${String(activation)} is not supported` };
    const relu = activation === 'relu';
    const [kernelW, biasW] = cfg['useBias'] === false ? [layer.weights[0], undefined] : [layer.weights[0], layer.weights[1]];
    if (name === 'Reshape' || name === 'Flatten') {
      if (name === 'Flatten' && cfg['dataFormat'] === 'channelsFirst') return { ok: false, reason: 'channelsFirst Flatten' };
      ops.push({ kind: 'reshape', out });
    } else if (name === 'Dense') {
      if (shape.length !== 1) return { ok: false, reason: 'Dense on a non-flat input' };
      ops.push({ kind: 'dense', inputs: shape[0]!, units: out[0]!, relu, kernel: ref(kernelW)!, bias: ref(biasW), out });
    } else if (name === 'Conv2D') {
      if (shape.length !== 3 || out.length !== 3) return { ok: false, reason: 'Conv2D input is not [H, W, C]' };
      if (cfg['dataFormat'] !== 'channelsLast') return { ok: false, reason: 'channelsFirst Conv2D' };
      const [dh, dw] = pair(cfg['dilationRate']);
      if (dh !== 1 || dw !== 1) return { ok: false, reason: 'dilated Conv2D' };
      const [kh, kw] = pair(cfg['kernelSize']);
      const pad = cfg['padding'];
      if (pad !== 'same' && pad !== 'valid') return { ok: false, reason: `Conv2D padding ${String(pad)}` };
      ops.push({
        kind: 'conv2d', in: shape as [number, number, number], out: out as [number, number, number], kh, kw,
        strides: pair(cfg['strides']), pad, relu, kernel: ref(kernelW)!, bias: ref(biasW),
      });
    } else if (name === 'MaxPooling2D') {
      if (shape.length !== 3 || cfg['dataFormat'] === 'channelsFirst') return { ok: false, reason: 'MaxPooling2D input is not [H, W, C]' };
      const pad = cfg['padding'];
      if (pad !== 'same' && pad !== 'valid') return { ok: false, reason: `MaxPooling2D padding ${String(pad)}` };
      ops.push({ kind: 'maxpool', in: shape as [number, number, number], out: out as [number, number, number], size: pair(cfg['poolSize']), strides: pair(cfg['strides'] ?? cfg['poolSize']), pad });
    } else {
      return { ok: false, reason: `layer ${name} is not supported` };
    }
    shape = out;
  }
  if (shape.length !== 1) return { ok: false, reason: 'output is not a vector of logits' };
  if (!ops.some((op) => op.kind === 'dense' || op.kind === 'conv2d')) return { ok: false, reason: 'no trainable layer' };
  return { ok: true, ops, inputSize, outputSize: shape[0]! };
}
