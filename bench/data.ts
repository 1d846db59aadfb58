import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeCsvDataset, writeImageFolder } from '../ml/datasets/dataset-export.js';
import { readCsvFile } from '../ml/datasets/csv-format.js';
import { loadCsvDataset } from '../ml/datasets/csv-dataset.js';
import { decodeImageFiles } from '../ml/datasets/image-format.js';
import { loadDataset } from '../ml/datasets/load-dataset.js';
import type { Benchmark } from './benchmark.js';
import { median } from './stats.js';

/**
 * How fast the file data sets load: `csv:` parses MNIST's 60,000 training
 * rows x 785 columns (label + 784 pixels) from one file; `images:` decodes
 * MNIST PNGs (grey, 28x28) with sharp. Both from files this benchmark writes
 * into a temporary directory (median of the trials; the first read of each
 * trial comes from the page cache, as after any recent write).
 */
const bench: Benchmark = {
  description: 'file data sets: csv: load time of 60,000 x 785 MNIST rows, images: PNG decodes per second (sharp)',
  async run({ log }) {
    const trials = Number(process.env['STRATA_BENCH_TRIALS'] ?? 3);
    const images = Number(process.env['STRATA_BENCH_IMAGES'] ?? 10_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-data-'));
    try {
      const mnist = await loadDataset('mnist');
      let t = performance.now();
      writeCsvDataset(mnist, path.join(dir, 'csv'), { test: 1000 });
      log(`wrote train.csv (60,000 rows x 785 columns) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const csvSeconds: number[] = [];
      const csvDatasetSeconds: number[] = [];
      for (let k = 0; k < trials; k++) {
        t = performance.now();
        const table = readCsvFile(path.join(dir, 'csv', 'train.csv'));
        csvSeconds.push((performance.now() - t) / 1000);
        if (table.count !== 60_000 || table.header.columns.length !== 785) throw new Error(`read ${table.count} rows x ${table.header.columns.length} columns`);
        t = performance.now();
        loadCsvDataset(path.join(dir, 'csv'));
        csvDatasetSeconds.push((performance.now() - t) / 1000);
        log(`csv trial ${k + 1}: train.csv ${csvSeconds[k]!.toFixed(2)} s, csv:DIR (train + 1,000 test rows) ${csvDatasetSeconds[k]!.toFixed(2)} s`);
      }
      t = performance.now();
      await writeImageFolder(mnist, path.join(dir, 'png'), { train: images, test: 0 });
      log(`wrote ${images} PNGs in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const root = path.join(dir, 'png', 'train');
      const files = readdirSync(root).flatMap((c) => readdirSync(path.join(root, c)).map((f) => path.join(root, c, f)));
      const rates: number[] = [];
      for (let k = 0; k < trials; k++) {
        t = performance.now();
        const bytes = await decodeImageFiles(files, [28, 28, 1]);
        const s = (performance.now() - t) / 1000;
        if (bytes.length !== files.length * 784) throw new Error('short decode');
        rates.push(files.length / s);
        log(`images trial ${k + 1}: ${files.length} PNGs decoded in ${s.toFixed(2)} s = ${rates[k]!.toFixed(0)} images/s`);
      }
      return {
        csvLoadSeconds: median(csvSeconds),
        csvDatasetLoadSeconds: median(csvDatasetSeconds),
        csvRows: 60_000,
        csvColumns: 785,
        imagesPerSecond: median(rates),
        images: files.length,
        imageFormat: 'png 28x28 grey',
        trials,
        host: { cpus: os.availableParallelism(), loadAverage1m: os.loadavg()[0] },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
