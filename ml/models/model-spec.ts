import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';
import { badSpec, type SpecOrigin } from '../spec-origin.js';

/** The built-in models (ml/models/builtin-models.ts). */
export type ModelKind = 'mlp' | 'cnn';
export const MODEL_KINDS: readonly ModelKind[] = ['mlp', 'cnn'];

/** What a model must fit: the data set's sample shape and class count. */
export interface ModelShape {
  /** [height, width, channels] of one input. */
  inputShape: [number, number, number];
  numClasses: number;
}

export function isModelKind(value: string): value is ModelKind {
  return value === 'mlp' || value === 'cnn';
}

export function parseModelKind(value: string, flag = '--model'): ModelKind {
  if (isModelKind(value)) return value;
  throw new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: unknown model '${value}' (expected mlp or cnn)`, { flag, value });
}

/**
 * A model as the CLI and config files name it: a built-in (`mlp`, `cnn`) or
 * a tfjs Layers `model.json` (what `model.save('file://DIR')` and
 * `tensorflowjs_converter --output_format tfjs_layers_model` write; a
 * directory stands for its `model.json`).
 */
export type ModelSpec =
  | { kind: 'builtin'; name: ModelKind; text: string }
  | { kind: 'file'; /** Absolute path of the model.json. */ path: string; text: string };

/**
 * Builds a fresh model for a data set's shape, its weights initialised from
 * `seed` (the same seed gives the same weights in every process). The model
 * takes flat inputs `[batch, h x w x c]` and outputs logits `[batch, classes]`;
 * `buildModel` adapts a factory's model whose input is `[batch, h, w, c]`.
 */
export type ModelFactory = (shape: ModelShape, seed: number) => tf.LayersModel | Promise<tf.LayersModel>;

/** What `buildModel` accepts: a spec string, a parsed spec, or a factory. */
export type ModelSource = string | ModelSpec | ModelFactory;

/** Resolves `text` to a built-in or a model.json file (which must exist). Relative paths resolve against the working directory. */
export function parseModelSpec(text: string, origin: SpecOrigin = { option: 'model' }): ModelSpec {
  const raw = text.trim();
  if (isModelKind(raw)) return { kind: 'builtin', name: raw, text: raw };
  const looksLikePath = raw.endsWith('.json') || raw.includes('/') || raw.includes(path.sep) || raw.startsWith('.');
  if (raw === '' || !looksLikePath) {
    throw badSpec(origin, text, `unknown model '${text}' (expected ${MODEL_KINDS.join(', ')} or a path to a tfjs Layers model.json)`);
  }
  let file = path.resolve(raw);
  if (existsSync(file) && statSync(file).isDirectory()) file = path.join(file, 'model.json');
  if (!existsSync(file)) throw badSpec(origin, text, `model file ${file} not found`);
  return { kind: 'file', path: file, text: raw };
}

/** A short name for reports and logs: the built-in's name or the file's path. */
export function modelSpecName(spec: ModelSpec): string {
  return spec.kind === 'builtin' ? spec.name : spec.path;
}
