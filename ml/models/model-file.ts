import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';
import type { SpecOrigin } from '../spec-origin.js';
import type { ModelShape } from './builtin-models.js';
import { parseModelSpec, type ModelSource } from './model-spec.js';

type Json = Record<string, unknown>;

/** A tfjs Layers model.json and its weights, read from disk (no tfjs-node). */
export interface ModelFile {
  /** Absolute path of the model.json. */
  path: string;
  /** The Keras topology (snake_case keys, as in the file); `model_config` unwrapped. */
  topology: Json;
  /** The input shape of one sample as the file declares it (batch dimension dropped). */
  inputShape: number[];
  /** The weights, when the manifest lists them: they become the initial weights. */
  weights: { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } | null;
}

/** The name of the layer Strata puts in front of a file model that takes images: flat rows in, the file's input shape out. */
export const INPUT_RESHAPE_LAYER = 'strata_input_reshape';

const UNSEEDED_INITIALIZERS = new Set(['Zeros', 'Ones', 'Constant', 'Identity', 'zeros', 'ones', 'constant', 'identity']);

function bad(file: string, why: string, details: Json = {}): StrataError {
  return new StrataError('STRATA_ERR_MODEL_FILE', `${file}: ${why}`, { file, ...details });
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The layer list of a Sequential or functional topology (older Sequential configs are a bare list). */
function layersOf(topology: Json, file: string): Json[] {
  const config = topology['config'];
  const layers = Array.isArray(config) ? config : isObject(config) ? config['layers'] : undefined;
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every(isObject)) throw bad(file, 'the topology has no layer list');
  return layers as Json[];
}

function isSequential(topology: Json): boolean {
  return topology['class_name'] === 'Sequential';
}

function batchShapeOf(config: Json): (number | null)[] | undefined {
  const s = config['batch_input_shape'] ?? config['batch_shape'];
  if (Array.isArray(s)) return s as (number | null)[];
  const sample = config['input_shape'];
  if (Array.isArray(sample)) return [null, ...(sample as (number | null)[])];
  return undefined;
}

/** The config of the layer that declares the model's input (the InputLayer, or a Sequential's first layer). */
function inputConfig(topology: Json, file: string): Json {
  const layers = layersOf(topology, file);
  if (isSequential(topology)) return layers[0]!['config'] as Json;
  const config = topology['config'] as Json;
  const inputs = config['input_layers'];
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw bad(file, `the model has ${Array.isArray(inputs) ? inputs.length : 0} inputs; Strata trains models with one input`);
  }
  const name = (inputs[0] as unknown[])[0];
  const layer = layers.find((l) => l['name'] === name || (l['config'] as Json | undefined)?.['name'] === name);
  if (layer === undefined) throw bad(file, `input layer '${String(name)}' is not in the layer list`);
  return layer['config'] as Json;
}

/** Reads a model.json and the weight files its manifest names (all in memory; shards concatenated in manifest order). */
export function readModelFile(file: string): ModelFile {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new StrataError('STRATA_ERR_MODEL_FILE', `${abs}: model file not found`, { file: abs });
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(abs, 'utf8'));
  } catch (err) {
    throw bad(abs, `not JSON (${(err as Error).message})`);
  }
  if (!isObject(json) || !isObject(json['modelTopology'])) throw bad(abs, 'not a tfjs Layers model.json (no modelTopology)');
  let topology = json['modelTopology'];
  if (isObject(topology['model_config'])) topology = topology['model_config'];
  const cls = topology['class_name'];
  if (cls !== 'Sequential' && cls !== 'Model' && cls !== 'Functional') {
    throw bad(abs, `topology class '${String(cls)}' is not a Layers model (Sequential, Model or Functional); graph models cannot be trained`);
  }
  const declared = batchShapeOf(inputConfig(topology, abs));
  if (declared === undefined) throw bad(abs, 'the model declares no input shape (batch_input_shape)');
  const sample = declared.slice(1);
  if (sample.length === 0 || sample.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 1)) {
    throw bad(abs, `input shape ${JSON.stringify(declared)} has an unknown dimension; Strata needs a fixed sample shape`);
  }
  return { path: abs, topology, inputShape: sample as number[], weights: readWeights(abs, json['weightsManifest']) };
}

function readWeights(file: string, manifest: unknown): ModelFile['weights'] {
  if (manifest === undefined || manifest === null) return null;
  if (!Array.isArray(manifest) || !manifest.every(isObject)) throw bad(file, 'weightsManifest is not a list of weight groups');
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of manifest as Json[]) {
    const paths = group['paths'];
    const weights = group['weights'];
    if (!Array.isArray(paths) || !Array.isArray(weights)) throw bad(file, 'a weight group needs paths and weights');
    for (const p of paths) {
      const shard = path.resolve(path.dirname(file), String(p));
      if (!existsSync(shard)) throw bad(file, `weight file ${shard} not found`, { weightFile: shard });
      buffers.push(readFileSync(shard));
    }
    specs.push(...(weights as tf.io.WeightsManifestEntry[]));
  }
  if (specs.length === 0) return null;
  const all = Buffer.concat(buffers);
  return { specs, data: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer };
}

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

/**
 * Checks a model file's declared input against the data set: its size must
 * be the data set's sample size, and an image input ([h, w, c]) must be the
 * data set's shape (the same count of values in another layout would train
 * on scrambled images).
 */
export function checkFileInput(mf: ModelFile, shape: ModelShape): void {
  const want = shape.inputShape;
  const size = want[0] * want[1] * want[2];
  const got = mf.inputShape;
  const gotSize = got.reduce((a, b) => a * b, 1);
  const sameImage = got.length !== 3 || got.every((d, i) => d === want[i]);
  if (gotSize !== size || !sameImage) {
    throw new StrataError('STRATA_ERR_MODEL_SHAPE', `${mf.path}: the model takes inputs of shape [${got.join(', ')}] but the data set's samples are [${want.join(', ')}]`, {
      file: mf.path, expected: [...want], actual: [...got],
    });
  }
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

/**
 * The image shape a model spec's file declares ([h, w, c]; [h, w] counts as
 * one channel), or undefined (built-ins, factories, flat inputs): what
 * `loadDataset`'s `inputShape` wants, so images decode to fit the model.
 */
export function modelInputShape(source: ModelSource, origin?: SpecOrigin): [number, number, number] | undefined {
  if (typeof source === 'function') return undefined;
  const spec = typeof source === 'string' ? parseModelSpec(source, origin) : source;
  if (spec.kind !== 'file') return undefined;
  const s = readModelFile(spec.path).inputShape;
  if (s.length === 3) return [s[0]!, s[1]!, s[2]!];
  if (s.length === 2) return [s[0]!, s[1]!, 1];
  return undefined;
}
