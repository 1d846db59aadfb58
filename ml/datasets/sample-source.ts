import { StrataError } from '../../common/strata-error.js';
import type { Dataset, DataSplit } from './dataset.js';

/**
 * A batch of labelled samples, compact as Strata keeps them: `count` rows of
 * `featureSize` raw values (row-major, each sample's [h, w, c] flattened),
 * which the source's `scale` turns into model inputs, and a class id per row.
 * Structurally a `DataSplit`.
 */
export interface SampleBatch {
  features: Uint8Array | Float32Array;
  labels: Uint8Array;
  count: number;
}

/**
 * Where a device's (or a data set's) samples come from: an async iterable
 * of labelled batches that knows its sample shape and class count. Sources
 * may be finite (files, arrays) or live (a feed); consumers read batches as
 * they come. Each `for await` starts a new pass where the source can replay.
 */
export interface SampleSource extends AsyncIterable<SampleBatch> {
  /** [height, width, channels] of one sample. */
  readonly inputShape: readonly [number, number, number];
  /** Class ids are 0..numClasses-1. */
  readonly numClasses: number;
  /** Multiplier from stored values to model inputs (1/255 for bytes). */
  readonly scale: number;
}

export interface ArraySourceOptions {
  /** `count x h x w x c` values, row-major. Bytes (Uint8Array) are pixels; floats are used as they are unless `scale` says otherwise. */
  features: Uint8Array | Float32Array | readonly number[];
  /** A class id (an integer 0..255) per sample. */
  labels: Uint8Array | readonly number[];
  /** [h, w, c] of one sample. */
  inputShape: readonly [number, number, number];
  /** Default: the largest label + 1. */
  numClasses?: number;
  /** Default 1/255 for Uint8Array features, else 1. */
  scale?: number;
  /** Samples per batch; default 256. */
  batchSize?: number;
}

function badOption(option: string, why: string): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `option "${option}": ${why}`, { option });
}

/** Samples held in memory (typed arrays or plain arrays), in batches, in order. */
export class ArraySampleSource implements SampleSource {
  readonly inputShape: readonly [number, number, number];
  readonly numClasses: number;
  readonly scale: number;
  readonly featureSize: number;
  readonly count: number;
  readonly #features: Uint8Array | Float32Array;
  readonly #labels: Uint8Array;
  readonly #batchSize: number;

  constructor(options: ArraySourceOptions) {
    const shape = options.inputShape;
    if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d >= 1)) throw badOption('inputShape', `expected [height, width, channels] of positive integers, got ${JSON.stringify(shape)}`);
    this.featureSize = shape[0] * shape[1] * shape[2];
    this.count = options.labels.length;
    const features = options.features instanceof Uint8Array || options.features instanceof Float32Array ? options.features : Float32Array.from(options.features);
    if (features.length !== this.count * this.featureSize) {
      throw badOption('features', `${features.length} values for ${this.count} labels of ${this.featureSize} features each (${this.count * this.featureSize} expected)`);
    }
    const labels = new Uint8Array(this.count);
    let max = -1;
    for (let i = 0; i < this.count; i++) {
      const l = options.labels[i]!;
      if (!Number.isInteger(l) || l < 0 || l > 255) throw badOption('labels', `label ${l} at ${i} is not a class id (an integer 0..255)`);
      labels[i] = l;
      max = Math.max(max, l);
    }
    const numClasses = options.numClasses ?? max + 1;
    if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses <= max) throw badOption('numClasses', `${numClasses} classes, but labels go up to ${max}`);
    const batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw badOption('batchSize', `expected a positive integer, got ${batchSize}`);
    const scale = options.scale ?? (features instanceof Uint8Array ? 1 / 255 : 1);
    if (!(scale > 0) || !Number.isFinite(scale)) throw badOption('scale', `expected a positive number, got ${scale}`);
    this.inputShape = Object.freeze([shape[0], shape[1], shape[2]] as const);
    this.numClasses = numClasses;
    this.scale = scale;
    this.#features = features;
    this.#labels = labels;
    this.#batchSize = batchSize;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SampleBatch> {
    const fs = this.featureSize;
    for (let start = 0; start < this.count; start += this.#batchSize) {
      const end = Math.min(this.count, start + this.#batchSize);
      yield { features: this.#features.subarray(start * fs, end * fs), labels: this.#labels.subarray(start, end), count: end - start };
    }
  }
}

/** One split of an in-memory data set as a sample source. */
export function splitSampleSource(dataset: Dataset, which: 'train' | 'test', batchSize?: number): ArraySampleSource {
  const split = dataset[which];
  return new ArraySampleSource({
    features: split.features, labels: split.labels, inputShape: dataset.inputShape, numClasses: dataset.numClasses, scale: dataset.scale,
    ...(batchSize !== undefined ? { batchSize } : {}),
  });
}

/**
 * Reads a finite source to its end into one in-memory split (bytes stay
 * bytes while every batch is bytes).
 *
 * @throws StrataError `STRATA_ERR_BAD_OPTION` (option `source`) for a batch
 *   whose sizes do not match, or a label outside 0..numClasses-1.
 */
export async function readSamples(source: SampleSource): Promise<DataSplit> {
  const fs = source.inputShape[0] * source.inputShape[1] * source.inputShape[2];
  const batches: SampleBatch[] = [];
  let count = 0;
  let bytes = true;
  for await (const b of source) {
    if (b.labels.length < b.count || b.features.length < b.count * fs) {
      throw badOption('source', `a batch of ${b.count} samples has ${b.labels.length} labels and ${b.features.length} values (${b.count * fs} needed)`);
    }
    for (let i = 0; i < b.count; i++) {
      if (b.labels[i]! >= source.numClasses) throw badOption('source', `label ${b.labels[i]} is not below numClasses ${source.numClasses}`);
    }
    bytes &&= b.features instanceof Uint8Array;
    batches.push(b);
    count += b.count;
  }
  const features = bytes ? new Uint8Array(count * fs) : new Float32Array(count * fs);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const b of batches) {
    features.set(b.features.subarray(0, b.count * fs), at * fs);
    labels.set(b.labels.subarray(0, b.count), at);
    at += b.count;
  }
  return { features, labels, count };
}

/** An in-memory data set from two finite sources (they must agree on shape, classes and scale). */
export async function datasetFromSources(name: string, train: SampleSource, test: SampleSource): Promise<Dataset> {
  if (train.inputShape.join('x') !== test.inputShape.join('x')) {
    throw badOption('test', `test samples are ${test.inputShape.join('x')} but training samples are ${train.inputShape.join('x')}`);
  }
  if (train.scale !== test.scale) throw badOption('test', `test scale ${test.scale} differs from the training scale ${train.scale}`);
  const [trainSplit, testSplit] = await Promise.all([readSamples(train), readSamples(test)]);
  const [h, w, c] = train.inputShape;
  return {
    name, inputShape: [h, w, c], featureSize: h * w * c, numClasses: Math.max(train.numClasses, test.numClasses), scale: train.scale,
    train: trainSplit, test: testSplit,
  };
}
