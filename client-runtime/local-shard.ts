import { StrataError } from '../common/strata-error.js';
import type { Dataset, DataSplit } from '../ml/datasets/dataset.js';
import { subsetSplit } from '../ml/datasets/dataset.js';
import { classesPerDevice, deviceIndices, dominantClassesOf, type Partition } from '../ml/datasets/partition.js';

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

export interface LocalShard {
  spec: ShardSpec;
  partition: Partition;
  /** The device's own training samples, in its stream order (a copy: the full data set can be dropped). */
  train: DataSplit;
  /** Classes this shard owns (label skew), else none. */
  dominantClasses: number[];
  /** Samples per class in this shard. */
  classCounts: number[];
}

/**
 * Shard `index` of `count` of a data set's training split, dealt by
 * `partition` from `seed` (ml/datasets/partition.ts): every device computes
 * the same deal, so the shards are disjoint and cover the split, yet each
 * device keeps only its own; a simulation deals its virtual clients the same way.
 */
export function localShard(dataset: Dataset, spec: ShardSpec, partition: Partition, seed = 1): LocalShard {
  const indices = deviceIndices(dataset.train.labels, dataset.train.count, spec.count, spec.index, partition, seed);
  const train = subsetSplit(dataset.train, indices, dataset.featureSize);
  const classCounts = new Array<number>(dataset.numClasses).fill(0);
  for (let i = 0; i < train.count; i++) classCounts[train.labels[i]!]!++;
  const dominantClasses = partition.kind === 'skew' ? dominantClassesOf(spec.index, dataset.numClasses, classesPerDevice(dataset.numClasses, spec.count)) : [];
  return { spec, partition, train, dominantClasses, classCounts };
}

/** The whole training split as one shard: a device with its own data (`--dataset idx:DIR` without `--shard`). */
export function wholeShard(dataset: Dataset, seed = 1): LocalShard {
  return localShard(dataset, { index: 0, count: 1 }, { kind: 'iid' }, seed);
}
