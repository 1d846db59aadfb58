import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { CL_DEFAULTS, runClExperiment, type ClConfig } from '../../client-runtime/cl-experiment.js';
import { initBackend, type BackendInfo } from '../../ml/backend.js';
import { splitClassIncremental } from '../../ml/datasets/class-incremental.js';
import { syntheticDataset } from '../../ml/datasets/synthetic.js';

const logger = pino({ level: 'silent' });
let backend: BackendInfo;

function config(over: Partial<ClConfig>): ClConfig {
  return { ...CL_DEFAULTS, dataset: 'split-synthetic', learningRate: 0.05, ...over };
}

describe('class-incremental scenario', () => {
  it('deals the classes into tasks by seed, every sample exactly once', () => {
    const ds = syntheticDataset({ trainCount: 500, testCount: 100 });
    const a = splitClassIncremental(ds, { tasks: 5, seed: 3 });
    const b = splitClassIncremental(ds, { tasks: 5, seed: 4 });
    expect(a.tasks.map((t) => t.classes.length)).toEqual([2, 2, 2, 2, 2]);
    expect(a.classOrder).not.toEqual(b.classOrder);
    expect(new Set(a.tasks.flatMap((t) => t.classes)).size).toBe(10);
    expect(a.tasks.reduce((n, t) => n + t.trainIndices.length, 0)).toBe(500);
    for (const t of a.tasks) for (const i of t.trainIndices) expect(t.classes).toContain(ds.train.labels[i]);
  });
});

describe('the continual-learning loop on split-synthetic', () => {
  beforeAll(async () => {
    backend = await initBackend({ backend: 'wasm' });
  });

  it('finetune forgets; ER with a memory remembers; CarM swaps from the store', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-cl-'));
    const ft = await runClExperiment(config({ method: 'finetune', storage: 'none', swap: 'off' }), dir, backend, logger);
    expect(ft.accuracyMatrix).toHaveLength(5);
    expect(ft.finalAverageAccuracy).toBeLessThan(0.35);
    expect(ft.forgetting).toBeGreaterThan(0.6);

    const er = await runClExperiment(config({ method: 'er', storage: 'none', swap: 'off', memory: 50 }), mkdtempSync(path.join(tmpdir(), 'strata-cl-')), backend, logger);
    expect(er.finalAverageAccuracy).toBeGreaterThan(ft.finalAverageAccuracy + 0.2);
    expect(er.swap).toBeNull();
    expect(er.emBytes).toBeGreaterThanOrEqual(50 * 784);

    const carm = await runClExperiment(config({ method: 'er', storage: 'all', swap: 'async', swapRatio: 0.5, memory: 50 }), mkdtempSync(path.join(tmpdir(), 'strata-cl-')), backend, logger);
    expect(carm.swap).not.toBeNull();
    expect(carm.swap!.applied).toBeGreaterThan(100);
    expect(carm.memory!.storedSamples).toBe(3000);
    expect(carm.storeBytes).toBeGreaterThanOrEqual(3000 * 784);
    expect(carm.finalAverageAccuracy).toBeGreaterThan(ft.finalAverageAccuracy + 0.2);
  });

  it('DER++ runs with logits in memory and storage', async () => {
    const r = await runClExperiment(config({ method: 'derpp', storage: 'all', swap: 'async', policy: 'hybrid', memory: 50 }), mkdtempSync(path.join(tmpdir(), 'strata-cl-')), backend, logger);
    expect(r.finalAverageAccuracy).toBeGreaterThan(0.4);
    expect(r.swap!.applied).toBeGreaterThan(0);
  });

  it('a non-split data set is a clear flag error', async () => {
    await expect(runClExperiment(config({ dataset: 'synthetic' }), tmpdir(), backend, logger)).rejects.toMatchObject({ code: 'STRATA_ERR_BAD_FLAG' });
  });
});
