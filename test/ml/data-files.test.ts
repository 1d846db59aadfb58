import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../ml/datasets/dataset.js';
import { writeCsvDataset, writeIdxDataset, writeImageFolder } from '../../ml/datasets/dataset-export.js';
import { parseCsvHeader, parseCsvRow, readCsvFile } from '../../ml/datasets/csv-format.js';
import { decodeImageFile } from '../../ml/datasets/image-format.js';
import { loadImageDataset } from '../../ml/datasets/image-dataset.js';
import { loadDataset, parseDatasetSpec } from '../../ml/datasets/load-dataset.js';
import { ArraySampleSource, datasetFromSources, readSamples, splitSampleSource } from '../../ml/datasets/sample-source.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-data-'));
// Decoded image folders are cached under here (and removed with it), in this process and in any it starts.
process.env['STRATA_CACHE_DIR'] = path.join(dir, 'cache');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let mnist: Dataset;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
});

function write(file: string, text: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/** Runs `fn` and returns the StrataError it throws (fails if it does not). */
async function thrown(fn: () => unknown): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await fn();
  } catch (err) {
    return err as { code: string; details: Record<string, unknown> };
  }
  throw new Error('expected an error');
}

describe('csv:DIR', () => {
  it('an MNIST export reads back as the IDX data: same bytes, labels, order, shape and scale', async () => {
    const out = path.join(dir, 'mnist-csv');
    writeCsvDataset(mnist, out, { train: 600, test: 200 });
    const ds = await loadDataset(`csv:${out}`);
    expect(ds.inputShape).toEqual([28, 28, 1]); // 784 features: a square
    expect(ds.numClasses).toBe(10);
    expect(ds.scale).toBeCloseTo(1 / 255, 12);
    expect(ds.train.features).toBeInstanceOf(Uint8Array);
    expect(ds.train.count).toBe(600);
    expect(Buffer.from(ds.train.features).equals(Buffer.from(mnist.train.features.subarray(0, 600 * 784)))).toBe(true);
    expect(Buffer.from(ds.test.labels).equals(Buffer.from(mnist.test.labels.subarray(0, 200)))).toBe(true);
  });

  it('float features stay floats (scale 1); spec options set the shape and scale; non-square rows are [1, 1, F]', async () => {
    const out = path.join(dir, 'floats');
    write(path.join(out, 'train.csv'), 'a, b ,label,c\n0.5,-1.25,1,3e2\n"2",0,0,  7.125\r\n\n1,1,2,1\n');
    write(path.join(out, 'test.csv'), 'a, b ,label,c\n1.5,2,0,-0.001\n');
    const ds = await loadDataset(`csv:${out}`);
    expect(ds.inputShape).toEqual([1, 1, 3]);
    expect(ds.scale).toBe(1);
    expect(ds.numClasses).toBe(3);
    expect(Array.from(ds.train.features)).toEqual([0.5, -1.25, 300, 2, 0, 7.125, 1, 1, 1]);
    expect(Array.from(ds.train.labels)).toEqual([1, 0, 2]);
    expect(Array.from(ds.test.features)).toEqual([1.5, 2, Math.fround(-0.001)]);
    const shaped = await loadDataset(`csv:${out}?shape=3x1x1&scale=0.5`);
    expect(shaped.inputShape).toEqual([3, 1, 1]);
    expect(shaped.scale).toBe(0.5);
    // The model's input shape is taken when its size fits.
    expect((await loadDataset(`csv:${out}`, { inputShape: [1, 3, 1] })).inputShape).toEqual([1, 3, 1]);
  });

  it('malformed rows are coded errors naming the file, row and column', async () => {
    const cases: [string, string, Record<string, unknown>][] = [
      ['x,label\n1,0\nabc,1\n', 'train.csv', { row: 3, column: 'x' }],
      ['x,label\n1,0\n2\n', 'train.csv', { row: 3, expected: 2, actual: 1 }],
      ['x,label\n1,0,5\n', 'train.csv', { row: 2 }],
      ['x,label\n1,0\n,1\n', 'train.csv', { row: 3, column: 'x' }],
      ['x,label\n1,1.5\n', 'train.csv', { row: 2, column: 'label' }],
      ['x,label\n1,300\n', 'train.csv', { row: 2, column: 'label' }],
      ['x,y\n1,0\n', 'train.csv', { row: 1 }],
    ];
    for (const [i, [text, file, details]] of cases.entries()) {
      const d = path.join(dir, `bad-${i}`);
      write(path.join(d, 'train.csv'), text);
      write(path.join(d, 'test.csv'), 'x,label\n1,0\n');
      const err = await thrown(() => loadDataset(`csv:${d}`));
      expect(err.code, text).toBe('STRATA_ERR_DATASET_FILE');
      expect(err.details, text).toMatchObject({ file: path.join(d, file), ...details });
    }
    const d = path.join(dir, 'bad-header');
    write(path.join(d, 'train.csv'), 'x,label\n1,0\n');
    write(path.join(d, 'test.csv'), 'label,x\n0,1\n');
    expect(await thrown(() => loadDataset(`csv:${d}`))).toMatchObject({ code: 'STRATA_ERR_DATASET_FILE', details: { file: path.join(d, 'test.csv'), row: 1 } });
    expect(await thrown(() => loadDataset(`csv:${path.join(dir, 'nowhere')}`))).toMatchObject({ code: 'STRATA_ERR_DATASET_MISSING' });
  });

  it('single rows parse with the helpers the live inbox uses (the same numbers as whole files)', () => {
    const header = parseCsvHeader('f0,label,f1', 'inbox.csv');
    expect(header).toEqual({ columns: ['f0', 'label', 'f1'], labelIndex: 1, featureCount: 2 });
    const row = parseCsvRow(' 0.25 ,3, 1e-3', header, { file: 'inbox.csv', row: 2 });
    expect(Array.from(row.features)).toEqual([0.25, Math.fround(0.001)]);
    expect(row.label).toBe(3);
    expect(() => parseCsvRow('1,x,2', header, { file: 'inbox.csv', row: 7 })).toThrow(expect.objectContaining({
      code: 'STRATA_ERR_DATASET_FILE', details: expect.objectContaining({ file: 'inbox.csv', row: 7, column: 'label' }),
    }));
    const file = write(path.join(dir, 'one', 'x.csv'), 'f0,label,f1\n 0.25 ,3, 1e-3\n');
    const table = readCsvFile(file);
    expect(Array.from(table.features)).toEqual(Array.from(row.features));
  });
});

describe('images:DIR', () => {
  it('a PNG export of MNIST reads back as the IDX data: same bytes, labels and order', async () => {
    const out = path.join(dir, 'mnist-png');
    await writeImageFolder(mnist, out, { train: 300, test: 100 });
    const ds = await loadDataset(`images:${out}`);
    expect(ds.inputShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);
    expect(ds.train.count).toBe(300);
    expect(Buffer.from(ds.train.features).equals(Buffer.from(mnist.train.features.subarray(0, 300 * 784)))).toBe(true);
    expect(Buffer.from(ds.train.labels).equals(Buffer.from(mnist.train.labels.subarray(0, 300)))).toBe(true);
    expect(Buffer.from(ds.test.features).equals(Buffer.from(mnist.test.features.subarray(0, 100 * 784)))).toBe(true);
    // Resized and as RGB for a model that takes 14x14x3 (from the model's shape, or spec options).
    const small = await loadDataset(`images:${out}`, { inputShape: [14, 14, 3] });
    expect(small.inputShape).toEqual([14, 14, 3]);
    expect(small.train.features.length).toBe(300 * 14 * 14 * 3);
    const opts = await loadDataset(`images:${out}?size=20x16&channels=1`);
    expect(opts.inputShape).toEqual([20, 16, 1]);
  });

  it('JPEG and RGB images decode; classes are numbered in natural folder order', async () => {
    const out = path.join(dir, 'rgb');
    const colours: Record<string, [number, number, number]> = { cat: [200, 10, 10], dog: [10, 200, 10], '10-zebra': [10, 10, 200], '2-ant': [90, 90, 90] };
    for (const split of ['train', 'test']) {
      for (const [name, rgb] of Object.entries(colours)) {
        mkdirSync(path.join(dir, 'rgb', split, name), { recursive: true });
        const img = sharp({ create: { width: 8, height: 6, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
        await img.jpeg({ quality: 100 }).toFile(path.join(out, split, name, 'a.jpg'));
        await sharp({ create: { width: 8, height: 6, channels: 4, background: { r: rgb[0], g: rgb[1], b: rgb[2], alpha: 1 } } }).png().toFile(path.join(out, split, name, 'b.PNG'));
      }
    }
    const ds = await loadDataset(`images:${out}`);
    expect(ds.inputShape).toEqual([6, 8, 3]);
    expect(ds.numClasses).toBe(4);
    // Natural order: 2-ant, 10-zebra, cat, dog. Files in name order: a.jpg of every class, then b.PNG.
    expect(Array.from(ds.train.labels)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    const px = (i: number) => Array.from(ds.train.features.subarray(i * 144, i * 144 + 3));
    for (const [i, rgb] of [[0, [90, 90, 90]], [1, [10, 10, 200]], [2, [200, 10, 10]], [7, [10, 200, 10]]] as const) {
      px(i).forEach((v, k) => expect(Math.abs(v - rgb[k]!)).toBeLessThanOrEqual(3));
    }
    const grey = await decodeImageFile(path.join(out, 'train', 'cat', 'b.PNG'), [3, 4, 1]);
    expect(grey.length).toBe(12);
  });

  it('a decoded folder is cached on disk for the next process, and a changed image is decoded afresh', async () => {
    const out = path.join(dir, 'cached');
    await writeImageFolder(mnist, out, { train: 40, test: 10 });
    const cacheDir = path.join(dir, 'cache-test');
    // Two loads at once: one decodes, the other waits for its cache file.
    const [a, b] = await Promise.all([loadImageDataset(out, { cache: { dir: cacheDir } }), loadImageDataset(out, { cache: { dir: cacheDir } })]);
    expect(Buffer.from(a.train.features).equals(Buffer.from(b.train.features))).toBe(true);
    const entries = readdirSync(cacheDir);
    expect(entries.filter((f) => f.endsWith('.bin'))).toHaveLength(1);
    expect(entries.filter((f) => !f.endsWith('.bin'))).toEqual([]); // no lock or temporary file left
    // The next load reads the cache file (marked here), not the images.
    const bin = path.join(cacheDir, entries[0]!);
    const bytes = readFileSync(bin);
    const headerBytes = 16 + 4 + 8;
    bytes[headerBytes] = 255 - bytes[headerBytes]!;
    writeFileSync(bin, bytes);
    const c = await loadImageDataset(out, { cache: { dir: cacheDir } });
    expect(c.train.features[0]).toBe(bytes[headerBytes]);
    // Sample 0's image changes: a new key, decoded from the files.
    const first = path.join(out, 'train', String(mnist.train.labels[0]), '00.png');
    const sharp = (await import('sharp')).default;
    await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: 7, g: 7, b: 7 } } }).png().toFile(first);
    const d = await loadImageDataset(out, { cache: { dir: cacheDir } });
    expect(d.train.features[0]).toBe(7);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.bin'))).toHaveLength(2);
  });

  it('a corrupt image, a stray file or an unknown test class is a coded error naming it', async () => {
    const base = path.join(dir, 'bad-images');
    const good = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png().toBuffer();
    const setup = (name: string, extra: (d: string) => void): string => {
      const d = path.join(base, name);
      for (const split of ['train', 'test']) {
        mkdirSync(path.join(d, split, '0'), { recursive: true });
        writeFileSync(path.join(d, split, '0', 'ok.png'), good);
      }
      extra(d);
      return d;
    };
    const corrupt = setup('corrupt', (d) => writeFileSync(path.join(d, 'train', '0', 'zz.png'), Buffer.from('not a png')));
    expect(await thrown(() => loadDataset(`images:${corrupt}`))).toMatchObject({ code: 'STRATA_ERR_DATASET_FILE', details: { image: path.join(corrupt, 'train', '0', 'zz.png') } });
    const stray = setup('stray', (d) => writeFileSync(path.join(d, 'train', '0', 'notes.txt'), 'x'));
    expect(await thrown(() => loadDataset(`images:${stray}`))).toMatchObject({ code: 'STRATA_ERR_DATASET_FILE', details: { file: path.join(stray, 'train', '0', 'notes.txt') } });
    const unknown = setup('unknown', (d) => {
      mkdirSync(path.join(d, 'test', '7'));
      writeFileSync(path.join(d, 'test', '7', 'x.png'), good);
    });
    expect(await thrown(() => loadDataset(`images:${unknown}`))).toMatchObject({ code: 'STRATA_ERR_DATASET_FILE', details: { file: path.join(unknown, 'test', '7') } });
  });
});

describe('data set specs', () => {
  it('parse csv:, images: and their options; bad ones are coded errors naming the flag or option', () => {
    expect(parseDatasetSpec('split-csv:/d?shape=28x28x1&scale=0.5')).toMatchObject({ kind: 'csv', dir: '/d', split: true, options: { shape: [28, 28, 1], scale: 0.5 } });
    expect(parseDatasetSpec('images:/d?size=32x32&channels=3')).toMatchObject({ kind: 'images', dir: '/d', options: { size: [32, 32], channels: 3 } });
    expect(parseDatasetSpec('idx:/a?b')).toMatchObject({ kind: 'idx', dir: '/a?b' });
    expect(() => parseDatasetSpec('images:/d?channels=2')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG', details: expect.objectContaining({ flag: '--dataset' }) }));
    expect(() => parseDatasetSpec('csv:/d?size=3x3', { option: 'dataset' })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option: 'dataset' }) }));
    expect(() => parseDatasetSpec('csv:')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG' }));
  });

  it('an IDX export round-trips', async () => {
    const out = path.join(dir, 'mnist-idx');
    writeIdxDataset(mnist, out, { train: 100, test: 50 });
    const ds = await loadDataset(`idx:${out}`);
    expect(ds.train.count).toBe(100);
    expect(Buffer.from(ds.train.features).equals(Buffer.from(mnist.train.features.subarray(0, 100 * 784)))).toBe(true);
  });
});

describe('sample sources', () => {
  it('in-memory arrays stream in batches that know their shape and classes, and read back whole', async () => {
    const features = Array.from({ length: 5 * 4 }, (_, i) => i / 10);
    const source = new ArraySampleSource({ features, labels: [0, 1, 2, 1, 0], inputShape: [2, 2, 1], batchSize: 2 });
    expect(source.numClasses).toBe(3);
    expect(source.scale).toBe(1);
    const sizes: number[] = [];
    for await (const b of source) sizes.push(b.count);
    expect(sizes).toEqual([2, 2, 1]);
    const split = await readSamples(source);
    expect(split.count).toBe(5);
    expect(Array.from(split.features)).toEqual(Array.from(Float32Array.from(features)));
    const ds = await datasetFromSources('mine', source, new ArraySampleSource({ features: new Float32Array(4), labels: [2], inputShape: [2, 2, 1] }));
    expect(ds).toMatchObject({ name: 'mine', inputShape: [2, 2, 1], featureSize: 4, numClasses: 3, scale: 1 });
    // A data set split as a source: bytes stay bytes, scale 1/255.
    const mnistSource = splitSampleSource(mnist, 'test', 1000);
    const back = await readSamples(mnistSource);
    expect(back.features).toBeInstanceOf(Uint8Array);
    expect(back.count).toBe(10_000);
    expect(mnistSource.scale).toBeCloseTo(1 / 255, 12);
  });

  it('bad arrays are STRATA_ERR_BAD_OPTION naming the option', () => {
    const bad = (o: Partial<ConstructorParameters<typeof ArraySampleSource>[0]>, option: string) => expect(() => new ArraySampleSource({
      features: new Float32Array(8), labels: [0, 1], inputShape: [2, 2, 1], ...o,
    })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option }) }));
    bad({ features: new Float32Array(7) }, 'features');
    bad({ labels: [0, -1] }, 'labels');
    bad({ inputShape: [2, 0, 1] }, 'inputShape');
    bad({ numClasses: 1 }, 'numClasses');
    bad({ batchSize: 0 }, 'batchSize');
  });
});
