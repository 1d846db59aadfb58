import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';
import { checkFileInput, INPUT_RESHAPE_LAYER, inputConfig, isObject, isSequential, layersOf, readModelFile, type Json, type ModelFile } from './model-file-read.js';
import type { ModelShape } from './model-spec.js';

const UNSEEDED_INITIALIZERS = new Set(['Zeros', 'Ones', 'Constant', 'Identity', 'zeros', 'ones', 'constant', 'identity']);

/**
 * The topology Strata builds: (1) flat inputs — a model whose input is
 * `[h, w, c]` gets a Reshape layer in front taking `[h x w x c]`, the rows
 * Strata's batches hold (no weights, so the layout is the file's); (2)
 * logits — a final softmax (an activation, or a Softmax layer) becomes
 * linear: Strata's loss applies softmax itself and DER++ replays logits;
 * argmax predicts the same class; (3) seeded initialisers, so weights the
 * file does not carry come out the same in every process.
 */
export function strataTopology(mf: ModelFile, seed: number): { topology: Json; softmaxRemoved: boolean } {
  const topology = structuredClone(mf.topology);
  const layers = layersOf(topology, mf.path);
  const featureSize = mf.inputShape.reduce((a, b) => a * b, 1);
  if (mf.inputShape.length > 1) insertReshape(topology, layers, mf, featureSize);
  const softmaxRemoved = linearOutput(topology, layersOf(topology, mf.path));
  let k = 0;
  for (const layer of layersOf(topology, mf.path)) {
    const config = layer['config'];
    if (!isObject(config)) continue;
    for (const [key, value] of Object.entries(config)) {
      k++;
      if (!key.endsWith('_initializer') || !isObject(value) || UNSEEDED_INITIALIZERS.has(String(value['class_name']))) continue;
      const init = isObject(value['config']) ? value['config'] : (value['config'] = {});
      if (init['seed'] === null || init['seed'] === undefined) init['seed'] = seed * 1000 + k;
    }
  }
  return { topology, softmaxRemoved };
}

function insertReshape(topology: Json, layers: Json[], mf: ModelFile, featureSize: number): void {
  const names = new Set(layers.map((l) => String((l['config'] as Json | undefined)?.['name'] ?? l['name'])));
  let name = INPUT_RESHAPE_LAYER;
  for (let i = 1; names.has(name); i++) name = `${INPUT_RESHAPE_LAYER}_${i}`;
  const reshapeConfig: Json = { name, trainable: true, dtype: 'float32', target_shape: mf.inputShape };
  const input = inputConfig(topology, mf.path);
  const first = layers[0]!;
  if (isSequential(topology)) {
    const reshape: Json = { class_name: 'Reshape', config: reshapeConfig };
    if (first['class_name'] === 'InputLayer') {
      setBatchShape(input, featureSize);
      layers.splice(1, 0, reshape);
    } else {
      for (const key of ['batch_input_shape', 'batch_shape', 'input_shape']) delete input[key];
      reshapeConfig['batch_input_shape'] = [null, featureSize];
      layers.unshift(reshape);
    }
    return;
  }
  const inputName = String(input['name']);
  setBatchShape(input, featureSize);
  for (const layer of layers) {
    const nodes = layer['inbound_nodes'];
    if (!Array.isArray(nodes)) continue;
    for (const node of nodes) {
      if (!Array.isArray(node)) throw new StrataError('STRATA_ERR_MODEL_FILE', `${mf.path}: layer '${String(layer['name'])}' has inbound nodes in a format Strata cannot rewire (save with tfjs or tensorflowjs_converter --output_format tfjs_layers_model)`, { file: mf.path });
      for (const ref of node) if (Array.isArray(ref) && ref[0] === inputName) ref[0] = name;
    }
  }
  const at = layers.findIndex((l) => (l['config'] as Json)['name'] === inputName || l['name'] === inputName);
  layers.splice(at + 1, 0, { name, class_name: 'Reshape', config: reshapeConfig, inbound_nodes: [[[inputName, 0, 0, {}]]] });
}

function setBatchShape(config: Json, featureSize: number): void {
  delete config['batch_shape'];
  delete config['input_shape'];
  config['batch_input_shape'] = [null, featureSize];
}

/** Turns a final softmax into a linear output; true when there was one. */
function linearOutput(topology: Json, layers: Json[]): boolean {
  let last: Json | undefined;
  if (isSequential(topology)) {
    last = layers[layers.length - 1];
  } else {
    const outputs = (topology['config'] as Json)['output_layers'];
    if (!Array.isArray(outputs) || outputs.length !== 1) return false;
    const name = (outputs[0] as unknown[])[0];
    last = layers.find((l) => l['name'] === name || (l['config'] as Json | undefined)?.['name'] === name);
  }
  if (last === undefined || !isObject(last['config'])) return false;
  const config = last['config'];
  if (last['class_name'] === 'Softmax') {
    last['class_name'] = 'Activation';
    last['config'] = { name: config['name'], trainable: config['trainable'] ?? true, dtype: config['dtype'] ?? 'float32', activation: 'linear' };
    return true;
  }
  if (config['activation'] === 'softmax') {
    config['activation'] = 'linear';
    return true;
  }
  return false;
}

/** Builds the model a file describes, adapted for Strata (see `strataTopology`), with the file's weights if it has them. */
export async function loadModelFile(file: string | ModelFile, shape: ModelShape, seed: number): Promise<{ model: tf.LayersModel; softmaxRemoved: boolean }> {
  const mf = typeof file === 'string' ? readModelFile(file) : file;
  checkFileInput(mf, shape);
  const { topology, softmaxRemoved } = strataTopology(mf, seed);
  const artifacts: tf.io.ModelArtifacts = { modelTopology: topology, format: 'layers-model' };
  if (mf.weights !== null) {
    artifacts.weightSpecs = mf.weights.specs;
    artifacts.weightData = mf.weights.data;
  }
  try {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts), { strict: true });
    return { model, softmaxRemoved };
  } catch (err) {
    throw new StrataError('STRATA_ERR_MODEL_FILE', `${mf.path}: tfjs cannot build this model (${(err as Error).message.split('\n')[0]})`, { file: mf.path }, { cause: err });
  }
}

/**
 * Writes `model` as a tfjs Layers model.json plus one weights.bin in `dir`
 * (what `model.save('file://DIR')` writes, without tfjs-node). Returns the
 * model.json's path.
 */
export async function saveModelFile(model: tf.LayersModel, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'model.json');
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData;
    const bytes = data === undefined ? new Uint8Array(0)
      : new Uint8Array(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
    const weightsManifest = artifacts.weightSpecs === undefined || artifacts.weightSpecs.length === 0 ? undefined
      : [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }];
    if (weightsManifest !== undefined) writeFileSync(path.join(dir, 'weights.bin'), bytes);
    writeFileSync(file, JSON.stringify({
      modelTopology: artifacts.modelTopology, format: artifacts.format ?? 'layers-model', generatedBy: artifacts.generatedBy, convertedBy: artifacts.convertedBy ?? null,
      ...(weightsManifest !== undefined ? { weightsManifest } : {}),
    }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: bytes.byteLength } };
  }));
  return file;
}
