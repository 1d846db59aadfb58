import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../common/strata-error.js';

type Sharp = typeof import('sharp').default;
let sharpModule: Sharp | undefined;
/** sharp (libvips) loads on first use: processes that never touch images never map it. */
async function loadSharp(): Promise<Sharp> {
  return (sharpModule ??= (await import('sharp')).default);
}
import type { Dataset, DataSplit } from './dataset.js';

/** How many samples of each split to write (default: all). */
export interface ExportOptions {
  train?: number;
  test?: number;
}

function counts(ds: Dataset, o: ExportOptions): { train: number; test: number } {
  return { train: Math.min(o.train ?? ds.train.count, ds.train.count), test: Math.min(o.test ?? ds.test.count, ds.test.count) };
}

function requireBytes(ds: Dataset, what: string): void {
  if (!(ds.train.features instanceof Uint8Array) || !(ds.test.features instanceof Uint8Array)) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `option "dataset": ${what} export needs byte features (${ds.name} holds floats)`, { option: 'dataset' });
  }
}

function idxBytes(type: number, dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Writes `idx:DIR` files (train/t10k images and labels) of a byte data set. */
export function writeIdxDataset(ds: Dataset, dir: string, options: ExportOptions = {}): void {
  requireBytes(ds, 'IDX');
  const n = counts(ds, options);
  mkdirSync(dir, { recursive: true });
  const [h, w, c] = ds.inputShape;
  const dims = (k: number): number[] => (c === 1 ? [k, h, w] : [k, h, w, c]);
  for (const [split, prefix, k] of [[ds.train, 'train', n.train], [ds.test, 't10k', n.test]] as const) {
    writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), idxBytes(0x08, dims(k), (split.features as Uint8Array).subarray(0, k * ds.featureSize)));
    writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), idxBytes(0x08, [k], split.labels.subarray(0, k)));
  }
}

function csvText(split: DataSplit, count: number, featureSize: number): string {
  const header = ['label', ...Array.from({ length: featureSize }, (_, i) => `f${i}`)].join(',');
  const rows: string[] = [header];
  for (let i = 0; i < count; i++) {
    const f = split.features.subarray(i * featureSize, (i + 1) * featureSize);
    rows.push(`${split.labels[i]},${Array.prototype.join.call(f, ',')}`);
  }
  return `${rows.join('\n')}\n`;
}

/** Writes `csv:DIR` (train.csv, test.csv: a `label` column then one column per feature, raw stored values). */
export function writeCsvDataset(ds: Dataset, dir: string, options: ExportOptions = {}): void {
  const n = counts(ds, options);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'train.csv'), csvText(ds.train, n.train, ds.featureSize));
  writeFileSync(path.join(dir, 'test.csv'), csvText(ds.test, n.test, ds.featureSize));
}

/**
 * Writes `images:DIR`: DIR/{train,test}/<class>/<index>.<format>, the file
 * names numbering the samples in their split's order (so `images:DIR` reads
 * them back in that order). Grey or RGB byte images only.
 */
export async function writeImageFolder(ds: Dataset, dir: string, options: ExportOptions & { format?: 'png' | 'jpeg'; parallel?: number } = {}): Promise<void> {
  requireBytes(ds, 'image');
  const [h, w, c] = ds.inputShape;
  if (c !== 1 && c !== 3) throw new StrataError('STRATA_ERR_BAD_OPTION', `option "dataset": images need 1 or 3 channels, ${ds.name} has ${c}`, { option: 'dataset' });
  const n = counts(ds, options);
  const format = options.format ?? 'png';
  const sharp = await loadSharp();
  for (const [split, name, k] of [[ds.train, 'train', n.train], [ds.test, 'test', n.test]] as const) {
    for (let label = 0; label < ds.numClasses; label++) mkdirSync(path.join(dir, name, String(label)), { recursive: true });
    const width = String(Math.max(1, k - 1)).length;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < k; i = next++) {
        const raw = (split.features as Uint8Array).subarray(i * ds.featureSize, (i + 1) * ds.featureSize);
        const img = sharp(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), { raw: { width: w, height: h, channels: c } })
          .toColourspace(c === 1 ? 'b-w' : 'srgb');
        const file = path.join(dir, name, String(split.labels[i]), `${String(i).padStart(width, '0')}.${format === 'png' ? 'png' : 'jpg'}`);
        await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(file);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.parallel ?? 16, Math.max(1, k)) }, worker));
  }
}
