import path from 'node:path';
import { StrataError } from '../../common/strata-error.js';
import type { Dataset, DataSplit } from './dataset.js';
import { cachedImageSplits, type ImageCacheOptions } from './image-cache.js';
import { decodeImageFiles, listImageFolder, probeImageFile, type ImageShape } from './image-format.js';

export interface ImageDatasetOptions {
  /** Decode to this height x width. Default: `inputShape`'s, else the first training image's. */
  size?: readonly [number, number];
  /** 1 (grey) or 3 (RGB). Default: `inputShape`'s channels, else the first training image's (grey stays grey). */
  channels?: 1 | 3;
  /** The model's input shape, when known: images are decoded to fit it. */
  inputShape?: readonly [number, number, number];
  /** Default `images:DIR`. */
  name?: string;
  /** Decodes in flight at once; default 32. */
  parallel?: number;
  /**
   * Decoded folders are cached on disk (see image-cache.ts) so the
   * processes of one run decode a folder once; false decodes every time.
   * Default: on (`STRATA_IMAGE_CACHE=0` turns it off).
   */
  cache?: ImageCacheOptions | false;
}

/**
 * `images:DIR`: DIR/train/<class>/* and DIR/test/<class>/* (PNG or JPEG),
 * classes numbered in folder-name order (natural: 2 before 10; the test
 * split may lack some), samples in file-name order (see `listImageFolder`),
 * decoded by sharp to one shape, bytes with scale 1/255.
 */
export async function loadImageDataset(dir: string, options: ImageDatasetOptions = {}): Promise<Dataset> {
  const trainDir = path.join(dir, 'train');
  const train = listImageFolder(trainDir);
  const test = listImageFolder(path.join(dir, 'test'), train.classes);
  if (train.files.length === 0) throw new StrataError('STRATA_ERR_DATASET_FILE', `${trainDir}: no images`, { file: trainDir });
  const shape = await resolveShape(train.files[0]!.file, options);
  const parallel = options.parallel ?? 32;
  const split = async (files: { file: string; label: number }[]): Promise<DataSplit> => ({
    features: await decodeImageFiles(files.map((f) => f.file), shape, parallel),
    labels: Uint8Array.from(files, (f) => f.label),
    count: files.length,
  });
  const decodeAll = async (): Promise<DataSplit[]> => [await split(train.files), await split(test.files)];
  const featureSize = shape[0] * shape[1] * shape[2];
  const cache = options.cache ?? (process.env['STRATA_IMAGE_CACHE'] === '0' ? false : {});
  const [trainSplit, testSplit] = cache === false ? await decodeAll()
    : await cachedImageSplits({ root: dir, shape, classes: train.classes, splits: [train.files, test.files] }, featureSize, decodeAll, cache);
  return {
    name: options.name ?? `images:${dir}`,
    inputShape: [shape[0], shape[1], shape[2]],
    featureSize,
    numClasses: train.classes.length,
    scale: 1 / 255,
    train: trainSplit!,
    test: testSplit!,
  };
}

async function resolveShape(first: string, options: ImageDatasetOptions): Promise<ImageShape> {
  const hint = options.inputShape;
  if (hint !== undefined && hint[2] !== 1 && hint[2] !== 3) {
    throw new StrataError('STRATA_ERR_MODEL_SHAPE', `the model takes ${hint[2]}-channel images; images decode to 1 (grey) or 3 (RGB) channels`, {
      expected: [1, 3], actual: hint[2],
    });
  }
  let size = options.size ?? (hint !== undefined ? [hint[0], hint[1]] as const : undefined);
  let channels = options.channels ?? (hint?.[2] as 1 | 3 | undefined);
  if (size === undefined || channels === undefined) {
    const probed = await probeImageFile(first);
    size ??= [probed[0], probed[1]];
    channels ??= probed[2];
  }
  return [size[0], size[1], channels];
}
