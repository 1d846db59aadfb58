import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryHierarchy } from '../../client-runtime/carm/memory-hierarchy.js';
import { experienceReplay } from '../../client-runtime/cl-methods/er.js';
import { ContinualLearner, splitHoldout } from '../../client-runtime/continual-learner.js';
import { DeviceAccountingPlugin } from '../../client-runtime/device-accounting-plugin.js';
import { DeviceAccounting } from '../../client-runtime/device-accounting.js';
import { MiroPlugin } from '../../client-runtime/miro/miro-plugin.js';
import { initBackend } from '../../ml/backend.js';
import { splitClassIncremental } from '../../ml/datasets/class-incremental.js';
import { concatIndices } from '../../ml/datasets/dataset.js';
import { syntheticDataset } from '../../ml/datasets/synthetic.js';
import { createModel } from '../../ml/models.js';
import { Trainer } from '../../ml/trainer.js';
import { loadProfile } from '../../profiles/profile-loader.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('Miro as a plugin of the CL loop, without a scenario', () => {
  it('profiles at boundaries only (a task trained in chunks, as a federated device does) and exposes its configuration and records', async () => {
    const ds = syntheticDataset({ trainCount: 600, testCount: 100 });
    const tasks = splitClassIncremental(ds, { tasks: 5, seed: 2 }).tasks.slice(0, 2);
    const model = createModel({ kind: 'mlp', inputShape: ds.inputShape, numClasses: ds.numClasses, seed: 2 });
    const trainerOptions = { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale, optimizer: 'sgd' as const, learningRate: 0.05 };
    const trainer = new Trainer(model, trainerOptions);
    const hierarchy = await MemoryHierarchy.open({
      memorySize: 30, featureSize: ds.featureSize, featureType: 'uint8', numClasses: ds.numClasses, storesLogits: false,
      storage: 'all', swap: 'async', swapRatio: 0.5, policy: 'random', dir: mkdtempSync(path.join(tmpdir(), 'strata-miro-plugin-')), seed: 2,
    });
    const strategy = experienceReplay(10);
    const accounting = new DeviceAccounting(loadProfile('jetson-nano-5w'), { sensor: 'off' });
    const miro = new MiroPlugin({
      knobs: hierarchy, strategy, model, makeTrainer: () => new Trainer(model, trainerOptions), optimizer: 'sgd', accounting, batch: 10, epochs: 1, seed: 2,
    }, { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, minTrialSteps: 1, profilingBudget: 1, validationPerTask: 20 });
    const device = new DeviceAccountingPlugin(accounting, { sampleBytes: hierarchy.sampleBytes });
    const learner = new ContinualLearner(trainer, strategy, hierarchy, { batch: 10, epochs: 1, seed: 2, optimizer: 'sgd', plugins: [miro, device] });
    try {
      expect(miro.config).toBeNull();
      const heldOut: Int32Array[] = [];
      for (const [index, task] of tasks.entries()) {
        const { available, heldOut: h } = splitHoldout(task.trainIndices, 20);
        heldOut.push(h);
        const half = Math.floor(available.length / 2);
        // The first chunk starts the task (Miro profiles); the second continues it (no profiling).
        await learner.trainTask(ds.train, { id: task.id, classes: task.classes, indices: available.subarray(0, half) }, index, { validation: concatIndices(heldOut) });
        expect(miro.boundaries).toHaveLength(index + 1);
        await learner.trainTask(ds.train, { id: task.id, classes: task.classes, indices: available.subarray(half) }, index, { boundary: false });
        expect(miro.boundaries).toHaveLength(index + 1);
        const b = miro.lastBoundary!;
        expect(b.task).toBe(index);
        expect(b.calibration).toBe('counted');
        expect(b.validationSamples).toBe(20 * (index + 1));
        expect(b.candidates.filter((c) => c.chosen)).toHaveLength(1);
        for (const c of b.candidates) {
          expect(c.accuracy).toBeGreaterThanOrEqual(0);
          expect(c.joules).toBeGreaterThan(0);
        }
        expect(b.joules).toBeGreaterThan(0);
        expect(b.flops).toBeGreaterThan(0);
        expect(b.checkJoules).toBe(0);
        // The configuration in force is the choice, applied through the hierarchy's knobs and the loop's stream buffer.
        expect(miro.config).toEqual({ memory: b.chosen.memory, streamBuffer: b.chosen.streamBuffer, swapRatio: b.chosen.swapRatio });
        expect(hierarchy.capacity).toBe(b.chosen.memory);
        expect(learner.streamBuffer).toBe(b.chosen.streamBuffer);
      }
      // Profiling is accounted as profiling; each chunk's training as training.
      const r = accounting.report();
      expect(r.profiling.joules).toBeCloseTo(miro.boundaries.reduce((s, b) => s + b.joules, 0), 9);
      expect(device.perTask).toHaveLength(4);
      expect(miro.report().configPerTask.map((c) => c.task)).toEqual([0, 1]);
    } finally {
      miro.close();
      await hierarchy.close();
      trainer.dispose();
      model.dispose();
    }
  });
});
