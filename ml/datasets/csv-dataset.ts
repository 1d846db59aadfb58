import { existsSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../common/strata-error.js';
import type { Dataset } from './dataset.js';
import { readCsvFile } from './csv-format.js';

export interface CsvDatasetOptions {
  /**
   * The sample shape [h, w, c]; its product must be the feature count.
   * Default: `inputShape` when its product is the feature count, else
   * [s, s, 1] when the feature count is a square s x s (s >= 2: an image
   * export such as MNIST's 784 columns), else [1, 1, F].
   */
  shape?: [number, number, number];
  /** The model's input shape, when known (see `shape`). */
  inputShape?: readonly [number, number, number];
  /** Multiplier from values to model inputs. Default 1/255 when every feature is an integer 0..255, else 1. */
  scale?: number;
  /** Default `csv:DIR`. */
  name?: string;
}

/** The sample shape of F features under the rules of `CsvDatasetOptions.shape`. */
export function csvSampleShape(features: number, options: Pick<CsvDatasetOptions, 'shape' | 'inputShape'> = {}): [number, number, number] {
  const fits = (s: readonly number[] | undefined): boolean => s !== undefined && s[0]! * s[1]! * s[2]! === features;
  if (options.shape !== undefined) {
    if (!fits(options.shape)) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `option "shape": ${options.shape.join('x')} holds ${options.shape[0] * options.shape[1] * options.shape[2]} values but the CSV rows have ${features} features`, { option: 'shape' });
    }
    return [...options.shape];
  }
  if (options.inputShape !== undefined && fits(options.inputShape)) return [...options.inputShape];
  const side = Math.round(Math.sqrt(features));
  if (side >= 2 && side * side === features) return [side, side, 1];
  return [1, 1, features];
}

/**
 * `csv:DIR`: DIR/train.csv and DIR/test.csv (see `readCsvFile`), with the
 * same header. Classes: 0..K-1 where K - 1 is the largest label seen.
 */
export function loadCsvDataset(dir: string, options: CsvDatasetOptions = {}): Dataset {
  if (!existsSync(dir)) throw new StrataError('STRATA_ERR_DATASET_MISSING', `${dir}: data set directory not found`, { file: dir });
  const train = readCsvFile(path.join(dir, 'train.csv'));
  const test = readCsvFile(path.join(dir, 'test.csv'), train.header);
  if (train.count === 0) throw new StrataError('STRATA_ERR_DATASET_FILE', `${path.join(dir, 'train.csv')}: no data rows`, { file: path.join(dir, 'train.csv') });
  const F = train.header.featureCount;
  const inputShape = csvSampleShape(F, options);
  // Both splits in one representation: bytes only if both are bytes.
  const bytes = train.features instanceof Uint8Array && test.features instanceof Uint8Array;
  const asFloat = (f: Uint8Array | Float32Array): Float32Array => (f instanceof Float32Array ? f : Float32Array.from(f));
  let maxLabel = 0;
  for (const t of [train, test]) for (let i = 0; i < t.count; i++) maxLabel = Math.max(maxLabel, t.labels[i]!);
  return {
    name: options.name ?? `csv:${dir}`,
    inputShape,
    featureSize: F,
    numClasses: maxLabel + 1,
    scale: options.scale ?? (bytes ? 1 / 255 : 1),
    train: { features: bytes ? train.features : asFloat(train.features), labels: train.labels, count: train.count },
    test: { features: bytes ? test.features : asFloat(test.features), labels: test.labels, count: test.count },
  };
}
