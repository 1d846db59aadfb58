import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';

/** Why a layer cannot train on the active backend: the kernel (or gradient) it lacks. */
export interface MissingKernel {
  layer: string;
  className: string;
  /** A kernel name (`DepthwiseConv2dNativeBackpropFilter`), or `<Op> gradient` when tfjs defines no gradient for an op. */
  kernel: string;
  backend: string;
}

function isModel(layer: tf.layers.Layer): layer is tf.LayersModel {
  return Array.isArray((layer as Partial<tf.LayersModel>).layers);
}

function leafLayers(model: tf.LayersModel, out: tf.layers.Layer[] = []): tf.layers.Layer[] {
  for (const layer of model.layers) {
    if (isModel(layer)) leafLayers(layer, out);
    else if (layer.getClassName() !== 'InputLayer') out.push(layer);
  }
  return out;
}

/** The kernel an error from a tfjs op or gradient names. */
function kernelOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unregistered = /Kernel '([^']+)' not registered/.exec(message);
  if (unregistered) return unregistered[1]!;
  const noGradient = /gradient function not found for ([A-Za-z0-9_]+)/.exec(message);
  if (noGradient) return `${noGradient[1]!} gradient`;
  return message.split('\n')[0]!.slice(0, 200);
}

function sampleShapes(layer: tf.layers.Layer): number[][] | undefined {
  let input: tf.SymbolicTensor | tf.SymbolicTensor[];
  try {
    input = layer.input as tf.SymbolicTensor | tf.SymbolicTensor[];
  } catch {
    return undefined; // a layer shared between several inputs: the whole-model step covers it
  }
  const list = Array.isArray(input) ? input : [input];
  const shapes = list.map((t) => t.shape.slice(1));
  if (shapes.some((s) => s.some((d) => d === null))) return undefined;
  return shapes as number[][];
}

/**
 * A dry run of one layer: its training-mode forward pass and the gradients
 * of its weights and of its inputs on a batch of 2, then its inference pass.
 * Batch-norm statistics the training pass moves are put back.
 */
function dryRun(layer: tf.layers.Layer, shapes: number[][]): void {
  const saved = layer.nonTrainableWeights.map((w) => tf.clone(w.read()));
  const inputs = shapes.map((s) => tf.variable(tf.randomNormal([2, ...s]), true));
  try {
    tf.tidy(() => {
      const xs = inputs.length === 1 ? inputs[0]! : inputs;
      const vars = [...layer.trainableWeights.map((w) => w.read() as tf.Variable), ...inputs];
      const { value, grads } = tf.variableGrads(() => {
        const out = layer.apply(xs, { training: true }) as tf.Tensor | tf.Tensor[];
        return tf.addN((Array.isArray(out) ? out : [out]).map((o) => tf.sum(tf.square(o)))) as tf.Scalar;
      }, vars);
      tf.dispose([value, ...Object.values(grads)]);
      tf.dispose(layer.apply(xs, { training: false }) as tf.Tensor | tf.Tensor[]);
    });
  } finally {
    layer.nonTrainableWeights.forEach((w, i) => w.write(saved[i]!));
    tf.dispose([...saved, ...inputs]);
  }
}

/** The first layer of `model` that cannot train on the active backend, or undefined when all can. */
export function findMissingKernel(model: tf.LayersModel): MissingKernel | undefined {
  const backend = tf.getBackend();
  for (const layer of leafLayers(model)) {
    const shapes = sampleShapes(layer);
    if (shapes === undefined) continue;
    try {
      dryRun(layer, shapes);
    } catch (err) {
      return { layer: layer.name, className: layer.getClassName(), kernel: kernelOf(err), backend };
    }
  }
  return undefined;
}

/**
 * Fails now, at load, for a model that would fail at its first training
 * step: every layer's forward and backward pass runs once on a tiny batch.
 *
 * @throws StrataError `STRATA_ERR_MODEL_UNSUPPORTED` naming the layer and the
 *   kernel (details: `layer`, `className`, `kernel`, `backend`).
 */
export function assertTrainable(model: tf.LayersModel, what = `model '${model.name}'`): void {
  const missing = findMissingKernel(model);
  if (missing === undefined) return;
  throw new StrataError('STRATA_ERR_MODEL_UNSUPPORTED',
    `${what}: layer '${missing.layer}' (${missing.className}) cannot train on the ${missing.backend} backend: it needs ${missing.kernel.endsWith(' gradient') ? 'the' : 'kernel'} ${missing.kernel}, which the backend lacks`,
    { ...missing });
}
