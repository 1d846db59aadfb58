import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';
import type { SpecOrigin } from '../spec-origin.js';
import { countModelWork } from '../work-count.js';
import { createModel, type ModelShape } from './builtin-models.js';
import { loadModelFile } from './model-file.js';
import { parseModelSpec, type ModelFactory, type ModelSource, type ModelSpec } from './model-spec.js';
import { assertTrainable } from './trainability.js';

export interface BuildModelOptions {
  /** Names the spec in errors (default: the option `model`). */
  origin?: SpecOrigin;
  /**
   * Default true for files and factories (built-ins are known to train):
   * one dry-run training step per layer on the active backend, so a model
   * that needs a kernel the backend lacks fails here, not mid-training.
   */
  checkTrainable?: boolean;
}

/**
 * The one way Strata builds a model: from a spec string (`mlp`, `cnn`, or a
 * path to a tfjs Layers model.json), a parsed spec, or a factory, for a data
 * set's shape, its fresh weights from `seed`. The model it returns takes
 * flat rows `[batch, h x w x c]` and outputs logits `[batch, classes]`, has
 * counted work (device time and energy are priced from it), and trains on
 * the active backend (initialise the backend first).
 *
 * @throws StrataError `STRATA_ERR_BAD_OPTION` / `STRATA_ERR_BAD_FLAG` for a
 *   bad spec (per `origin`), `STRATA_ERR_MODEL_FILE` for an unreadable file,
 *   `STRATA_ERR_MODEL_SHAPE` when the model does not fit the data set,
 *   `STRATA_ERR_MODEL_UNSUPPORTED` naming the layer and kernel that cannot
 *   train here, `STRATA_ERR_WORK_UNKNOWN_LAYER` for a layer whose work
 *   Strata cannot count.
 */
export async function buildModel(source: ModelSource, shape: ModelShape, seed = 1, options: BuildModelOptions = {}): Promise<tf.LayersModel> {
  const spec: ModelSpec | { kind: 'factory'; factory: ModelFactory } = typeof source === 'function' ? { kind: 'factory', factory: source }
    : typeof source === 'string' ? parseModelSpec(source, options.origin) : source;
  if (spec.kind === 'builtin') return createModel({ kind: spec.name, inputShape: shape.inputShape, numClasses: shape.numClasses, seed });
  const what = spec.kind === 'file' ? spec.path : 'the model factory\'s model';
  const model = spec.kind === 'file' ? (await loadModelFile(spec.path, shape, seed)).model : flatInput(await spec.factory(shape, seed), shape, what);
  try {
    checkModelShape(model, shape, what);
    countModelWork(model);
    if (options.checkTrainable ?? true) assertTrainable(model, what);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** A factory for `source` (a spec string or parsed spec), for APIs that take factories. */
export function modelFactory(source: string | ModelSpec, options: BuildModelOptions = {}): (shape: ModelShape, seed: number) => Promise<tf.LayersModel> {
  const spec = typeof source === 'string' ? parseModelSpec(source, options.origin) : source;
  return (shape, seed) => buildModel(spec, shape, seed, options);
}

/**
 * Checks that `model` takes the data set's flat rows and outputs one logit per class.
 *
 * @throws StrataError `STRATA_ERR_MODEL_SHAPE` (details: `what`, `expected`, `actual`).
 */
export function checkModelShape(model: tf.LayersModel, shape: ModelShape, what = `model '${model.name}'`): void {
  const size = shape.inputShape[0] * shape.inputShape[1] * shape.inputShape[2];
  const fail = (part: 'input' | 'output', expected: unknown[], actual: unknown[]): StrataError => new StrataError('STRATA_ERR_MODEL_SHAPE',
    `${what}: its ${part} is [${actual.join(', ')}] but the data set needs [${expected.join(', ')}]${part === 'output' ? ' (one logit per class)' : ''}`,
    { what, part, expected, actual });
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw fail('input', [null, size], model.inputs.map((i) => `${i.shape.length}-d`));
  const input = model.inputs[0]!.shape;
  if (input.length !== 2 || input[1] !== size) throw fail('input', [null, size], input);
  const output = model.outputs[0]!.shape;
  if (output.length !== 2 || output[1] !== shape.numClasses) throw fail('output', [null, shape.numClasses], output);
}

/**
 * A factory's model whose input is `[h, w, c]` (or any shape of the same
 * size) behind a Reshape, so it takes Strata's flat rows. Its weights (and
 * so the flat layout) are the model's own.
 */
function flatInput(model: tf.LayersModel, shape: ModelShape, what: string): tf.LayersModel {
  if (model.inputs.length !== 1) return model;
  const sample = model.inputs[0]!.shape.slice(1);
  if (sample.length === 1) return model;
  const size = shape.inputShape[0] * shape.inputShape[1] * shape.inputShape[2];
  if (sample.some((d) => d === null) || sample.reduce((a: number, b) => a * (b ?? 1), 1) !== size) {
    throw new StrataError('STRATA_ERR_MODEL_SHAPE', `${what}: its input is [${sample.join(', ')}] but the data set's samples are [${shape.inputShape.join(', ')}]`, {
      what, part: 'input', expected: [...shape.inputShape], actual: sample,
    });
  }
  const input = tf.input({ shape: [size], name: 'strata_input' });
  const reshaped = tf.layers.reshape({ targetShape: sample as number[], name: 'strata_input_reshape' }).apply(input) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: model.apply(reshaped) as tf.SymbolicTensor, name: model.name });
}
