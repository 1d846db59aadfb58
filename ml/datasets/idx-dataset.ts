import { existsSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../common/strata-error.js';
import type { Dataset, DataSplit } from './dataset.js';
import { readIdxFile } from './idx-format.js';

const SPLIT_FILES = {
  train: { images: ['train-images-idx3-ubyte', 'train-images.idx3-ubyte'], labels: ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'] },
  test: {
    images: ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte', 'test-images-idx3-ubyte'],
    labels: ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte', 'test-labels-idx1-ubyte'],
  },
} as const;

function locate(dir: string, names: readonly string[]): string {
  for (const name of names) {
    for (const candidate of [name, `${name}.gz`]) {
      const file = path.join(dir, candidate);
      if (existsSync(file)) return file;
    }
  }
  throw new StrataError('STRATA_ERR_DATASET_MISSING', `${path.join(dir, names[0]!)}: file not found (IDX data set needs ${names[0]})`, {
    file: path.join(dir, names[0]!),
  });
}

function readSplit(dir: string, which: 'train' | 'test'): { split: DataSplit; shape: [number, number, number]; scale: number } {
  const imagesFile = locate(dir, SPLIT_FILES[which].images);
  const labelsFile = locate(dir, SPLIT_FILES[which].labels);
  const images = readIdxFile(imagesFile);
  const labels = readIdxFile(labelsFile);
  if (images.dims.length < 2) throw new StrataError('STRATA_ERR_DATASET_FILE', `${imagesFile}: images need rank >= 2`, { file: imagesFile });
  if (labels.dims.length !== 1) throw new StrataError('STRATA_ERR_DATASET_FILE', `${labelsFile}: labels need rank 1`, { file: labelsFile });
  const count = images.dims[0]!;
  if (labels.dims[0] !== count) {
    throw new StrataError('STRATA_ERR_DATASET_FILE', `${labelsFile}: ${labels.dims[0]} labels for ${count} images in ${imagesFile}`, { file: labelsFile });
  }
  const labelBytes = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = labels.data[i]!;
    if (!Number.isInteger(v) || v < 0 || v > 255) {
      throw new StrataError('STRATA_ERR_DATASET_FILE', `${labelsFile}: label ${v} at ${i} is not a class index 0..255`, { file: labelsFile });
    }
    labelBytes[i] = v;
  }
  const h = images.dims[1]!;
  const w = images.dims[2] ?? 1;
  const c = images.dims[3] ?? 1;
  return {
    split: { features: images.data, labels: labelBytes, count },
    shape: [h, w, c],
    scale: images.data instanceof Uint8Array ? 1 / 255 : 1,
  };
}

/** Any data set in MNIST's IDX layout: train/t10k image and label files in `dir`. */
export function loadIdxDataset(dir: string, name = `idx:${dir}`): Dataset {
  if (!existsSync(dir)) throw new StrataError('STRATA_ERR_DATASET_MISSING', `${dir}: data set directory not found`, { file: dir });
  const train = readSplit(dir, 'train');
  const test = readSplit(dir, 'test');
  if (train.shape.join('x') !== test.shape.join('x')) {
    throw new StrataError('STRATA_ERR_DATASET_FILE', `${dir}: train images are ${train.shape.join('x')} but test images are ${test.shape.join('x')}`, { file: dir });
  }
  let maxLabel = 0;
  for (const split of [train.split, test.split]) for (let i = 0; i < split.count; i++) maxLabel = Math.max(maxLabel, split.labels[i]!);
  return {
    name,
    inputShape: train.shape,
    featureSize: train.shape[0] * train.shape[1] * train.shape[2],
    numClasses: maxLabel + 1,
    scale: train.scale,
    train: train.split,
    test: test.split,
  };
}
