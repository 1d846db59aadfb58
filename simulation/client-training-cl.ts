import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { MemoryHierarchy } from '../client-runtime/carm/memory-hierarchy.js';
import { createClStrategy } from '../client-runtime/cl-strategies/index.js';
import { ContinualLearner } from '../client-runtime/continual-learner.js';
import { Trainer } from '../ml/trainer.js';
import { getFlatWeights, setFlatWeights } from '../ml/weights.js';
import type { LocalOutcome, TrainingContext } from './client-training.js';
import type { ClientJob } from './sim-messages.js';

interface EmSnapshot {
  entries: { features: Uint8Array | Float32Array; label: number; task: number; logits: Float32Array | null }[];
}

/**
 * Federated continual learning, one client round: the client's stream for
 * this round is its share of the current task's classes; it trains with the
 * agents' own loop (`ContinualLearner.trainTask`) and memory hierarchy: its
 * own SQLite store under the run directory (every sample it ever streamed),
 * its RAM episodic memory, and asynchronous swaps from the second task on.
 *
 * A virtual client may run on any slot, so its EM is saved beside its store
 * after the round and reloaded before the next (a real device keeps it in
 * RAM). The EM is class-balanced rather than a reservoir: a reload
 * re-observes the saved samples, which would restart a reservoir's "samples
 * seen" counter and let each round's stream flush the old classes out.
 */
export async function trainLocalCl(ctx: TrainingContext, job: ClientJob, global: Float32Array, pace: () => void): Promise<LocalOutcome> {
  const spec = job.cl!;
  mkdirSync(spec.dir, { recursive: true });
  setFlatWeights(ctx.model, global);
  const trainer = new Trainer(ctx.model, {
    featureSize: ctx.featureSize, numClasses: ctx.numClasses, scale: ctx.scale, optimizer: job.train.optimizer, learningRate: job.train.learningRate,
  });
  const strategy = createClStrategy(spec.method, { replay: spec.replay });
  const hierarchy = strategy.usesMemory
    ? await MemoryHierarchy.open({
      memorySize: spec.memory, featureSize: ctx.featureSize, featureType: ctx.train.features instanceof Uint8Array ? 'uint8' : 'float32',
      numClasses: ctx.numClasses, storesLogits: strategy.storesLogits, storage: 'all', swap: spec.swap, swapRatio: spec.swapRatio,
      policy: 'random', dir: spec.dir, seed: job.seed, sampling: 'class-balanced',
    })
    : undefined;
  const emFile = path.join(spec.dir, 'em.bin');
  try {
    if (hierarchy !== undefined && existsSync(emFile)) {
      const snap = v8.deserialize(readFileSync(emFile)) as EmSnapshot;
      for (const e of snap.entries) hierarchy.memory.observe(e.features, e.label, e.task, e.logits ?? undefined);
    }
    for (const b of spec.backlog) {
      hierarchy?.onStreamBatch(ctx.train, b.indices, b.task, null, true);
      pace();
    }
    if (spec.backlog.length > 0) await hierarchy?.endTask();
    let lossSum = 0;
    let steps = 0;
    const learner = new ContinualLearner(trainer, strategy, hierarchy, {
      batch: job.train.batch, epochs: job.train.epochs, seed: job.seed, optimizer: job.train.optimizer,
      plugins: [{
        name: 'pace',
        afterStep: (p) => {
          lossSum += p.loss;
          steps++;
          pace();
        },
      }],
    });
    const timing = await learner.trainTask(ctx.train, { id: spec.task, classes: spec.classes, indices: job.indices }, spec.task);
    const local = getFlatWeights(ctx.model);
    for (let i = 0; i < local.length; i++) local[i] = local[i]! - global[i]!;
    let cl: LocalOutcome['cl'] = { emSize: 0, storedSamples: 0, swapsApplied: 0, replaySamples: timing.replaySamples };
    if (hierarchy !== undefined) {
      const mem = hierarchy.memory;
      const entries: EmSnapshot['entries'] = [];
      for (let s = 0; s < mem.size; s++) {
        entries.push({ features: mem.featuresOf(s).slice(), label: mem.labelOf(s), task: mem.taskOf(s), logits: mem.logitsOf(s)?.slice() ?? null });
      }
      writeFileSync(emFile, v8.serialize({ entries } satisfies EmSnapshot));
      const st = hierarchy.stats();
      cl = { emSize: st.emSize, storedSamples: st.storedSamples, swapsApplied: st.swap?.applied ?? 0, replaySamples: timing.replaySamples };
    }
    return { delta: local, numSamples: job.indices.length, loss: steps > 0 ? lossSum / steps : Number.NaN, flops: timing.flops, cl };
  } finally {
    await hierarchy?.close();
    trainer.dispose();
  }
}
