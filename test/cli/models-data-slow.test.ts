/**
 * The full-size checks of bring-your-own model and data (STRATA_E2E=1;
 * minutes on a loaded 2-core machine): a user CNN from model.json on all of
 * MNIST, and full MNIST exports as CSV and PNG against the IDX files.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCsvDataset, writeImageFolder } from '../../ml/datasets/dataset-export.js';
import { loadDataset } from '../../ml/datasets/load-dataset.js';
import { e2eSlowEnabled } from '../e2e/processes.js';
import { saveUserCnn } from '../ml/model-fixtures.js';
import { strata } from './run-strata.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-byo-slow-'));
// Decoded image folders are cached under here (and removed with it), in this process and the strata processes it starts.
process.env['STRATA_CACHE_DIR'] = path.join(dir, 'cache');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function train(...args: string[]): { testAccuracy: number; trainSeconds: number; samplesPerSecond: number } {
  const r = strata('train', '--backend', 'wasm', '--out', mkdtempSync(path.join(dir, 'run-')), '--json', ...args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { testAccuracy: number; trainSeconds: number; samplesPerSecond: number };
}

describe.runIf(e2eSlowEnabled)('bring your own model and data at full size', () => {
  it('a user CNN (conv, batch norm, depthwise conv, pooling, dropout, dense) from model.json reaches >= 0.97 on MNIST in 2 epochs on wasm', async () => {
    const file = await saveUserCnn(path.join(dir, 'user-cnn'));
    const r = train('--model', file, '--dataset', 'mnist', '--epochs', '2', '--batch', '64');
    process.stdout.write(`user CNN: test accuracy ${r.testAccuracy}, ${r.samplesPerSecond.toFixed(0)} samples/s, ${r.trainSeconds.toFixed(0)} s\n`);
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.97);
  }, 1_800_000);

  it('full MNIST exported as csv:DIR and images:DIR trains to the idx: accuracy within 0.01', async () => {
    const mnist = await loadDataset('mnist');
    writeCsvDataset(mnist, path.join(dir, 'csv'));
    await writeImageFolder(mnist, path.join(dir, 'png'));
    const args = ['--model', 'mlp', '--epochs', '2', '--batch', '64', '--seed', '1'];
    const idx = train('--dataset', 'mnist', ...args);
    const csv = train('--dataset', `csv:${path.join(dir, 'csv')}`, ...args);
    const png = train('--dataset', `images:${path.join(dir, 'png')}`, ...args);
    process.stdout.write(`mlp, 2 epochs: idx ${idx.testAccuracy}, csv ${csv.testAccuracy}, images ${png.testAccuracy}\n`);
    expect(Math.abs(csv.testAccuracy - idx.testAccuracy)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(png.testAccuracy - idx.testAccuracy)).toBeLessThanOrEqual(0.01);
  }, 1_800_000);
});
