/**
 * `--model PATH/model.json` and `--dataset csv:DIR | images:DIR` through the
 * real `strata` command, at small sizes (the full-MNIST versions run with
 * STRATA_E2E=1: models-data-slow.test.ts).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCsvDataset, writeIdxDataset, writeImageFolder } from '../../ml/datasets/dataset-export.js';
import { loadDataset } from '../../ml/datasets/load-dataset.js';
import { saveUserCnn } from '../ml/model-fixtures.js';
import { strata } from './run-strata.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-byo-'));
// Decoded image folders are cached under here (and removed with it), in this process and the strata processes it starts.
process.env['STRATA_CACHE_DIR'] = path.join(dir, 'cache');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SUB = { train: 3000, test: 1000 };
const idx = path.join(dir, 'idx');
const csv = path.join(dir, 'csv');
const png = path.join(dir, 'png');
let modelFile: string;

beforeAll(async () => {
  const mnist = await loadDataset('mnist');
  writeIdxDataset(mnist, idx, SUB);
  writeCsvDataset(mnist, csv, SUB);
  await writeImageFolder(mnist, png, SUB);
  modelFile = await saveUserCnn(path.join(dir, 'user-cnn'), { filters: 8, dense: 32 });
});

interface TrainReport { model: string; dataset: string; testAccuracy: number; backend: string; stepPath: { kind: string }; parameters: number; trainSamples: number }

function train(...args: string[]): TrainReport {
  const out = mkdtempSync(path.join(dir, 'run-'));
  const r = strata('train', '--backend', 'wasm', '--threads', '1', '--out', out, '--json', ...args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TrainReport;
}

describe('bring your own model and data (strata train, simulate)', () => {
  it('strata train --model PATH/model.json trains a user CNN (conv, batch norm, depthwise conv, pooling, dropout, dense) on wasm', () => {
    const r = train('--model', modelFile, '--dataset', `idx:${idx}`, '--epochs', '1', '--batch', '32', '--lr', '0.003');
    expect(r).toMatchObject({ model: modelFile, backend: 'wasm', trainSamples: 3000, stepPath: { kind: 'autograd' } });
    expect(r.testAccuracy).toBeGreaterThan(0.8);
  });

  it('csv:DIR and images:DIR exports of MNIST train to the idx: accuracy (within 0.01)', () => {
    const args = ['--model', 'mlp', '--epochs', '1', '--batch', '32', '--seed', '3'];
    const fromIdx = train('--dataset', `idx:${idx}`, ...args);
    const fromCsv = train('--dataset', `csv:${csv}`, ...args);
    const fromPng = train('--dataset', `images:${png}`, ...args);
    expect(fromIdx.testAccuracy).toBeGreaterThan(0.8);
    expect(Math.abs(fromCsv.testAccuracy - fromIdx.testAccuracy)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(fromPng.testAccuracy - fromIdx.testAccuracy)).toBeLessThanOrEqual(0.01);
  });

  it.each([
    [['--model', './no/such/model.json'], '--model'],
    [['--model', 'resnet'], '--model'],
    [['--dataset', 'images:/x?channels=4'], '--dataset'],
  ])('bad %j exits with one line naming %s', (args, flag) => {
    const r = strata('train', ...args);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(flag);
  });

  it('a model that does not fit the data fails at load with one line naming the file and the shapes', async () => {
    const wrong = await saveUserCnn(path.join(dir, 'rgb-cnn'), { filters: 2, dense: 4, inputShape: [32, 32, 3] });
    const r = strata('train', '--model', wrong, '--dataset', `idx:${idx}`, '--backend', 'wasm', '--out', mkdtempSync(path.join(dir, 'run-')));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(wrong);
    expect(r.stderr).toContain('[28, 28, 1]');
  });

  it('strata cl --model PATH learns split tasks continually with the user CNN', () => {
    const out = path.join(dir, 'cl');
    const r = strata('cl', '--model', modelFile, '--dataset', `split-idx:${idx}`, '--tasks', '2', '--epochs', '1', '--stream-buffer', '0.2',
      '--backend', 'wasm', '--threads', '1', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { config: { model: string }; finalAverageAccuracy: number };
    expect(report.config.model).toBe(modelFile);
    expect(report.finalAverageAccuracy).toBeGreaterThan(0.2);
  });

  it('strata simulate over images:DIR: the host, worker and evaluator read one cached decode of the folder', () => {
    const out = path.join(dir, 'sim-images');
    const r = strata('simulate', '--model', 'mlp', '--dataset', `images:${png}`, '--clients', '4', '--per-round', '2', '--rounds', '1',
      '--workers', '1', '--slots', '2', '--budget', 'off', '--profiles', 'reference-host', '--samples-per-round', '100', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'))).toMatchObject({ config: { dataset: `images:${png}` }, rounds: [{}] });
    const cached = readdirSync(path.join(dir, 'cache', 'images'));
    expect(cached.filter((f) => f.endsWith('.bin'))).toHaveLength(1);
  });

  it('strata simulate --model PATH federates the user CNN', () => {
    const out = path.join(dir, 'sim');
    const r = strata('simulate', '--model', modelFile, '--dataset', `idx:${idx}`, '--clients', '4', '--per-round', '2', '--rounds', '2',
      '--workers', '1', '--slots', '2', '--budget', 'off', '--profiles', 'reference-host', '--samples-per-round', '200', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { config: { model: string }; rounds: { accuracy: number }[]; finalAccuracy: number };
    expect(report.config.model).toBe(modelFile);
    // Two rounds of a few local steps: the point is that the file's model federates, not how far it gets.
    expect(report.rounds).toHaveLength(2);
    for (const r of report.rounds) expect(r.accuracy).toBeGreaterThanOrEqual(0);
  });
});
