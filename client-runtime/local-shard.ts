import { StrataError } from '../common/strata-error.js';
import type { Dataset, DataSplit } from '../ml/datasets/dataset.js';
import { subsetSplit } from '../ml/datasets/dataset.js';
import { Rng } from '../ml/rng.js';

/** `--shard I/N`: this device holds shard I (0-based) of N. */
export interface ShardSpec {
  index: number;
  count: number;
}

export function parseShardSpec(text: string, flag = '--shard'): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isSafeInteger(count) || count < 1 || count > 100_000 || index >= count) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: invalid value '${text}' (expected I/N with 0 <= I < N, e.g. 0/5)`, { flag, value: text });
  }
  return { index, count };
}

export interface LabelSkewOptions {
  /** Fraction of each class dealt to the shards that "own" it; the rest is spread over all shards. Default 0.8. */
  dominance?: number;
  /** Classes each shard owns. Default ceil(classes / N): 5 shards of MNIST own 2 classes each, every class one owner. */
  classesPerShard?: number;
  /** Seeds the deal; every device must use the same seed to get disjoint shards. Default 1. */
  seed?: number;
}

export interface LocalShard {
  spec: ShardSpec;
  /** The device's own training samples (a copy: the full data set can be dropped). */
  train: DataSplit;
  /** Classes this shard is dominated by. */
  dominantClasses: number[];
  /** Samples per class in this shard. */
  classCounts: number[];
}

/** The classes shard `index` owns: `k` consecutive classes starting at `index x k`, wrapping. */
export function dominantClassesOf(index: number, numClasses: number, k: number): number[] {
  return Array.from({ length: k }, (_, j) => (index * k + j) % numClasses);
}

/**
 * A seeded, label-skewed (non-IID) partition of a data set's training split
 * into `count` disjoint shards, of which this returns shard `index`.
 *
 * Shard i owns `k` classes; each sample of class c goes, with probability
 * `dominance`, to one of c's owners (uniformly), otherwise to any shard
 * (uniformly). Every device computes the same deal from the same seed, so the
 * shards are disjoint and cover the split, yet each device only keeps its own.
 * A class nobody owns (N x k < classes) is dealt uniformly.
 */
export function labelSkewedShard(dataset: Dataset, spec: ShardSpec, options: LabelSkewOptions = {}): LocalShard {
  const { index, count } = spec;
  const nc = dataset.numClasses;
  const dominance = options.dominance ?? 0.8;
  if (!(dominance >= 0 && dominance <= 1)) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `shard dominance must be in [0, 1] (got ${dominance})`, { option: 'dominance' });
  }
  const k = options.classesPerShard ?? Math.max(1, Math.min(nc, Math.ceil(nc / count)));
  if (!Number.isInteger(k) || k < 1 || k > nc) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `classesPerShard must be 1..${nc} (got ${k})`, { option: 'classesPerShard' });
  }
  const owners: number[][] = Array.from({ length: nc }, () => []);
  for (let s = 0; s < count; s++) for (const c of dominantClassesOf(s, nc, k)) owners[c]!.push(s);
  const rng = new Rng((options.seed ?? 1) * 2_654_435_761 + 17);
  const split = dataset.train;
  const mine: number[] = [];
  for (let i = 0; i < split.count; i++) {
    const o = owners[split.labels[i]!]!;
    // Two draws per sample whatever the branch, so the deal of sample i never depends on earlier branches.
    const u = rng.next();
    const v = rng.next();
    const shard = o.length > 0 && u < dominance ? o[Math.floor(v * o.length)]! : Math.floor(v * count);
    if (shard === index) mine.push(i);
  }
  // The device's stream order: a seeded shuffle of its own samples.
  const order = new Rng((options.seed ?? 1) * 31 + index + 1).shuffle(Int32Array.from(mine));
  const train = subsetSplit(split, order, dataset.featureSize);
  const classCounts = new Array<number>(nc).fill(0);
  for (let i = 0; i < train.count; i++) classCounts[train.labels[i]!]!++;
  return { spec, train, dominantClasses: dominantClassesOf(index, nc, k), classCounts };
}

/** The whole training split as one shard: a device with its own data (`--dataset idx:DIR` without `--shard`). */
export function wholeShard(dataset: Dataset, seed = 1): LocalShard {
  const order = new Rng(seed * 31 + 1).shuffle(Int32Array.from({ length: dataset.train.count }, (_, i) => i));
  const train = subsetSplit(dataset.train, order, dataset.featureSize);
  const classCounts = new Array<number>(dataset.numClasses).fill(0);
  for (let i = 0; i < train.count; i++) classCounts[train.labels[i]!]!++;
  return { spec: { index: 0, count: 1 }, train, dominantClasses: [], classCounts };
}
