import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryHierarchy } from '../../client-runtime/carm/memory-hierarchy.js';
import { CL_DEFAULTS, runClExperiment, type ClConfig } from '../../client-runtime/cl-experiment.js';
import { experienceReplay } from '../../client-runtime/cl-methods/er.js';
import type { ClPlugin } from '../../client-runtime/cl-plugin.js';
import { ContinualLearner, splitHoldout } from '../../client-runtime/continual-learner.js';
import { initBackend, type BackendInfo } from '../../ml/backend.js';
import { splitClassIncremental } from '../../ml/datasets/class-incremental.js';
import { syntheticDataset } from '../../ml/datasets/synthetic.js';
import { createModel } from '../../ml/models.js';
import { Trainer } from '../../ml/trainer.js';

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

  it('trainTask trains a split\'s rows, a boundary or a continuation; plugins see each hook in order, with the counted work', async () => {
    const ds = syntheticDataset({ trainCount: 600, testCount: 100 });
    const task = splitClassIncremental(ds, { tasks: 5, seed: 1 }).tasks[0]!;
    const model = createModel({ kind: 'mlp', inputShape: ds.inputShape, numClasses: ds.numClasses, seed: 1 });
    const trainer = new Trainer(model, { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale, optimizer: 'sgd', learningRate: 0.05 });
    const memory = await MemoryHierarchy.open({
      memorySize: 20, featureSize: ds.featureSize, featureType: 'uint8', numClasses: ds.numClasses, storesLogits: false,
      storage: 'none', swap: 'off', swapRatio: 0, policy: 'random', dir: mkdtempSync(path.join(tmpdir(), 'strata-cl-')), seed: 1,
    });
    const calls: string[] = [];
    let steps = 0;
    const plugin = (name: string): ClPlugin => ({
      name,
      beforeTask: (s) => { calls.push(`${name} before ${s.index} rows ${s.task.indices.length} validation ${s.validation.length}`); },
      afterStep: () => { if (name === 'a') steps++; },
      afterTask: (t) => { calls.push(`${name} after ${t.task} ${t.boundary ? 'boundary' : 'continued'}`); },
    });
    try {
      const learner = new ContinualLearner(trainer, experienceReplay(10), memory, { batch: 10, epochs: 1, seed: 1, optimizer: 'sgd', plugins: [plugin('a'), plugin('b')] });
      const { available, heldOut } = splitHoldout(task.trainIndices, 20);
      expect(heldOut).toHaveLength(20);
      const first = await learner.trainTask(ds.train, { id: task.id, classes: task.classes, indices: available.subarray(0, 50) }, 0, { validation: heldOut });
      const second = await learner.trainTask(ds.train, { id: task.id, classes: task.classes, indices: available.subarray(50, 100) }, 0, { boundary: false });
      expect(calls).toEqual(['a before 0 rows 50 validation 20', 'b before 0 rows 50 validation 20', 'a after 0 boundary', 'b after 0 boundary', 'a after 0 continued', 'b after 0 continued']);
      expect(steps).toBe(first.steps + second.steps);
      // 5 steps of 10 stream samples each; replay starts once the EM holds samples (step 2 on), then 10 a step; it persists through the call.
      expect([first.steps, first.streamSamples, first.replaySamples]).toEqual([5, 50, 40]);
      expect([second.steps, second.streamSamples, second.replaySamples]).toEqual([5, 50, 50]);
      // Counted work: each trained sample's forward + backward through the MLP (3 x 470,282 FLOPs) and SGD's 2 FLOPs per parameter a step.
      expect(first.flops).toBe(90 * 1_410_846 + 5 * 2 * 235_146);
      expect(second.flops).toBe(100 * 1_410_846 + 5 * 2 * 235_146);
      expect(first.persistedSamples).toBe(0);
    } finally {
      await memory.close();
      trainer.dispose();
      model.dispose();
    }
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
