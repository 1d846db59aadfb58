import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { BackendInfo } from '../ml/backend.js';
import { splitClassIncremental } from '../ml/datasets/class-incremental.js';
import { loadDataset, parseDatasetSpec } from '../ml/datasets/load-dataset.js';
import { createModel, type ModelKind } from '../ml/models.js';
import { Trainer, type OptimizerKind } from '../ml/trainer.js';
import { createClStrategy, type ClMethodName } from './cl-strategies/index.js';
import { ContinualLearner, type ClRunResult } from './continual-learner.js';
import { MemoryHierarchy, type MemoryHierarchyStats, type StorageBudget } from './memory-hierarchy.js';
import type { SwapMode } from './swap-manager.js';
import type { SwapPolicyName } from './swap-policy.js';

/** Everything a `strata cl` run is configured by (the report's `config`). */
export interface ClConfig {
  dataset: string;
  model: ModelKind;
  tasks: number;
  epochs: number;
  batch: number;
  replay: number;
  method: ClMethodName;
  memory: number;
  storage: StorageBudget;
  swap: SwapMode;
  swapRatio: number;
  policy: SwapPolicyName;
  storageLatencyMs: number;
  optimizer: OptimizerKind;
  learningRate: number;
  derppAlpha: number;
  seed: number;
}

export const CL_DEFAULTS: Omit<ClConfig, 'dataset'> = {
  model: 'mlp', tasks: 5, epochs: 1, batch: 10, replay: 10, method: 'er', memory: 100, storage: 'all', swap: 'async',
  swapRatio: 0.5, policy: 'random', storageLatencyMs: 0, optimizer: 'sgd', learningRate: 0.05, derppAlpha: 0.3, seed: 1,
};

export interface ClReport extends ClRunResult {
  command: 'cl';
  config: ClConfig;
  backend: string;
  backendInfo: BackendInfo;
  classOrder: number[];
  taskClasses: number[][];
  memory: MemoryHierarchyStats | null;
  swap: MemoryHierarchyStats['swap'];
  emBytes: number;
  storeBytes: number;
  startedAt: string;
}

export interface ClHooks {
  onStep?: ConstructorParameters<typeof ContinualLearner>[3]['onStep'];
}

/** One single-device continual-learning experiment, start to end. */
export async function runClExperiment(config: ClConfig, dir: string, backend: BackendInfo, logger: Logger, hooks: ClHooks = {}): Promise<ClReport> {
  const spec = parseDatasetSpec(config.dataset);
  if (!spec.split) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `--dataset: continual learning needs a split scenario, e.g. split-${config.dataset}`, { flag: '--dataset' });
  }
  const dataset = loadDataset(spec);
  const scenario = splitClassIncremental(dataset, { tasks: config.tasks, seed: config.seed });
  const strategy = createClStrategy(config.method, { replay: config.replay, alpha: config.derppAlpha });
  const model = createModel({ kind: config.model, inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: config.seed });
  const trainer = new Trainer(model, {
    featureSize: dataset.featureSize, numClasses: dataset.numClasses, scale: dataset.scale,
    optimizer: config.optimizer, learningRate: config.learningRate,
  });
  const startedAt = new Date().toISOString();
  const hierarchy = strategy.usesMemory
    ? await MemoryHierarchy.open({
      memorySize: config.memory, featureSize: dataset.featureSize,
      featureType: dataset.train.features instanceof Uint8Array ? 'uint8' : 'float32',
      numClasses: dataset.numClasses, storesLogits: strategy.storesLogits,
      storage: config.storage, swap: config.storage === 'none' ? 'off' : config.swap, swapRatio: config.swapRatio, policy: config.policy,
      storageLatencyMs: config.storageLatencyMs, dir, seed: config.seed, logger: logger.child({ component: 'memory' }),
    })
    : undefined;
  try {
    const learner = new ContinualLearner(trainer, strategy, hierarchy, {
      batch: config.batch, epochs: config.epochs, seed: config.seed, logger, onStep: hooks.onStep,
    });
    const result = await learner.run(scenario);
    const memory = hierarchy?.stats() ?? null;
    return {
      command: 'cl',
      config,
      backend: backend.name,
      backendInfo: backend,
      classOrder: scenario.classOrder,
      taskClasses: scenario.tasks.map((t) => t.classes),
      ...result,
      memory,
      swap: memory?.swap ?? null,
      emBytes: memory?.emBytes ?? 0,
      storeBytes: memory?.storeBytes ?? 0,
      startedAt,
    };
  } finally {
    await hierarchy?.close();
    trainer.dispose();
    model.dispose();
  }
}
