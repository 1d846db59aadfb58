/**
 * Reading tfjs Layers model.json files without tfjs at run time (a
 * simulation worker process learns a model's input shape without loading
 * tfjs): the file, its weights, its declared input.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';
import type { SpecOrigin } from '../spec-origin.js';
import { parseModelSpec, type ModelShape, type ModelSource } from './model-spec.js';

export type Json = Record<string, unknown>;

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

export function bad(file: string, why: string, details: Json = {}): StrataError {
  return new StrataError('STRATA_ERR_MODEL_FILE', `${file}: ${why}`, { file, ...details });
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The layer list of a Sequential or functional topology (older Sequential configs are a bare list). */
export function layersOf(topology: Json, file: string): Json[] {
  const config = topology['config'];
  const layers = Array.isArray(config) ? config : isObject(config) ? config['layers'] : undefined;
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every(isObject)) throw bad(file, 'the topology has no layer list');
  return layers as Json[];
}

export function isSequential(topology: Json): boolean {
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
export function inputConfig(topology: Json, file: string): Json {
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
