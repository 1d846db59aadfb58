import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { BackendInfo } from '../ml/backend.js';
import { splitClassIncremental } from '../ml/datasets/class-incremental.js';
import { loadDataset, parseDatasetSpec } from '../ml/datasets/load-dataset.js';
import { buildModel, modelInputShape } from '../ml/models.js';
import { Trainer, type OptimizerKind } from '../ml/trainer.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { priceList, type PriceList } from '../profiles/price-list.js';
import { loadProfile } from '../profiles/profile-loader.js';
import { hostBusyClock } from './busy-clock.js';
import { MemoryHierarchy, type MemoryHierarchyStats, type StorageBudget } from './carm/memory-hierarchy.js';
import type { SwapMode } from './carm/swap-manager.js';
import type { SwapPolicyName } from './carm/swap-policy.js';
import { builtinClMethods, findClMethod } from './cl-methods/index.js';
import type { ClPlugin } from './cl-plugin.js';
import { ContinualLearner, type ClRunResult } from './continual-learner.js';
import { DeviceAccountingPlugin, type TaskEnergy } from './device-accounting-plugin.js';
import { DeviceAccounting, type DeviceAccountingReport, type EnergyBreakdown } from './device-accounting.js';
import { compileMiroOptions, MiroPlugin, type MiroOptions, type MiroReport } from './miro/miro-plugin.js';

export type { TaskEnergy } from './device-accounting-plugin.js';

/** Everything a `strata cl` run is configured by (the report's `config`). */
export interface ClConfig {
  dataset: string;
  /** `mlp`, `cnn`, or a path to a tfjs Layers model.json. */
  model: string;
  tasks: number;
  epochs: number;
  batch: number;
  replay: number;
  /** A built-in CL method's name: finetune, er or derpp. */
  method: string;
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
  /** Fraction of each task's stream the device keeps and trains on (Miro's stream buffer), (0, 1]. */
  streamBuffer: number;
  /** Device profile name or JSON file: device time and energy are accounted for it. */
  profile: string;
  profiler: 'off' | 'miro';
  /** Miro's options (filled with defaults in the report). */
  miro?: MiroOptions;
}

export const CL_DEFAULTS: Omit<ClConfig, 'dataset'> = {
  model: 'mlp', tasks: 5, epochs: 1, batch: 10, replay: 10, method: 'er', memory: 100, storage: 'all', swap: 'async',
  swapRatio: 0.5, policy: 'random', storageLatencyMs: 0, optimizer: 'sgd', learningRate: 0.05, derppAlpha: 0.3, seed: 1,
  streamBuffer: 1, profile: 'reference-host', profiler: 'off',
};

/** What the run's model costs per sample and its optimizer per step, in counted FLOPs (see `ml/work-count.ts`). */
export interface ModelWorkSummary {
  forwardFlopsPerSample: number;
  trainingFlopsPerSample: number;
  trainableParams: number;
  optimizer: OptimizerKind;
  optimizerFlopsPerStep: number;
}

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
  /** The device profile's name. */
  profile: string;
  deviceProfile: Pick<DeviceProfile, 'name' | 'description' | 'compute' | 'storage' | 'power'>;
  /** What counted work costs the profiled device. */
  priceList: PriceList;
  /** The counted work of the model and optimizer the run trains. */
  modelWork: ModelWorkSummary;
  /** Host seconds of the accounted device work (training + profiling compute; metric evaluation is not device work): a diagnostic. */
  hostSeconds: number;
  /** The counted work on the profiled device (model; see `deviceTime.source`). */
  deviceSeconds: number;
  deviceTime: DeviceAccountingReport['deviceTime'];
  /** Joules per component on the profiled device; `source` says model or sensor. */
  energy: EnergyBreakdown;
  /** Final average accuracy per joule (profiling included). */
  costEffectiveness: number;
  /** Miro's own cost, part of the totals above. */
  profiling: DeviceAccountingReport['profiling'];
  energyPerTask: TaskEnergy[];
  /** Miro's candidates and choices per task boundary; null when `profiler` is off. */
  miro: MiroReport | null;
}

export interface ClHooks {
  /** After every training step (progress bars). */
  onStep?: (p: { task: number; tasks: number; step: number; stepsPerTask: number; loss: number }) => void;
}

/** Bytes of one stored sample: features (and logits with DER++). */
function sampleBytes(featureSize: number, featureBytes: number, logits: number): number {
  return featureSize * featureBytes + logits * 4;
}

/** One single-device continual-learning experiment, start to end. */
export async function runClExperiment(config: ClConfig, dir: string, backend: BackendInfo, logger: Logger, hooks: ClHooks = {}): Promise<ClReport> {
  const spec = parseDatasetSpec(config.dataset);
  if (!spec.split) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `--dataset: continual learning needs a split scenario, e.g. split-${config.dataset}`, { flag: '--dataset' });
  }
  const profile = loadProfile(config.profile);
  const miroOptions = config.profiler === 'miro' ? compileMiroOptions(config.miro) : undefined;
  const dataset = await loadDataset(spec, { inputShape: modelInputShape(config.model, { option: 'model' }) });
  const scenario = splitClassIncremental(dataset, { tasks: config.tasks, seed: config.seed });
  const strategy = findClMethod(builtinClMethods({ derppAlpha: config.derppAlpha }), config.method).create({ replay: config.replay, batchSize: config.batch });
  if (miroOptions !== undefined && !strategy.usesMemory) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `--profiler miro tunes the episodic memory: --method ${config.method} has none (use er or derpp)`, { flag: '--profiler' });
  }
  const model = await buildModel(config.model, dataset, config.seed);
  const trainerOptions = {
    featureSize: dataset.featureSize, numClasses: dataset.numClasses, scale: dataset.scale,
    optimizer: config.optimizer, learningRate: config.learningRate,
  };
  const trainer = new Trainer(model, trainerOptions);
  const startedAt = new Date().toISOString();
  const featureType = dataset.train.features instanceof Uint8Array ? 'uint8' : 'float32';
  const bytesPerSample = sampleBytes(dataset.featureSize, featureType === 'uint8' ? 1 : 4, strategy.storesLogits ? dataset.numClasses : 0);
  const hierarchy = strategy.usesMemory
    ? await MemoryHierarchy.open({
      memorySize: config.memory, featureSize: dataset.featureSize, featureType,
      numClasses: dataset.numClasses, storesLogits: strategy.storesLogits,
      storage: config.storage, swap: config.storage === 'none' ? 'off' : config.swap, swapRatio: config.swapRatio, policy: config.policy,
      storageLatencyMs: config.storageLatencyMs, dir, seed: config.seed, logger: logger.child({ component: 'memory' }),
    })
    : undefined;
  // The host compute diagnostic is busy CPU time; device seconds and joules come from counted work alone.
  const busyClock = hostBusyClock(backend.name);
  const accounting = new DeviceAccounting(profile, { computeClock: busyClock.source });
  const accountingPlugin = new DeviceAccountingPlugin(accounting, { sampleBytes: bytesPerSample });
  let miro: MiroPlugin | undefined;
  try {
    accounting.start();
    if (miroOptions !== undefined) {
      miro = new MiroPlugin({
        knobs: hierarchy!, strategy, model, makeTrainer: () => new Trainer(model, trainerOptions), optimizer: config.optimizer,
        accounting, batch: config.batch, epochs: config.epochs, seed: config.seed, busyClock, logger: logger.child({ component: 'miro' }),
      }, miroOptions);
    }
    const progress: ClPlugin = {
      name: 'progress',
      afterStep: (s) => hooks.onStep?.({ task: s.index, tasks: config.tasks, step: s.step, stepsPerTask: s.steps, loss: s.loss }),
    };
    const learner: ContinualLearner = new ContinualLearner(trainer, strategy, hierarchy, {
      batch: config.batch, epochs: config.epochs, seed: config.seed, optimizer: config.optimizer, logger,
      plugins: [...(miro === undefined ? [] : [miro]), accountingPlugin, progress],
      streamBuffer: config.streamBuffer, busyClock,
      holdoutPerTask: miroOptions?.validationPerTask ?? 0,
    });
    const result = await learner.run(scenario);
    const memory = hierarchy?.stats() ?? null;
    const device = accounting.finish();
    return {
      command: 'cl',
      config: miroOptions === undefined ? config : { ...config, miro: { ...miroOptions } },
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
      profile: profile.name,
      deviceProfile: { name: profile.name, description: profile.description, compute: profile.compute, storage: profile.storage, power: profile.power },
      priceList: priceList(profile),
      modelWork: {
        forwardFlopsPerSample: learner.work.model.forwardFlopsPerSample, trainingFlopsPerSample: learner.work.model.trainingFlopsPerSample,
        trainableParams: learner.work.model.trainableParams, optimizer: config.optimizer, optimizerFlopsPerStep: learner.work.optimizerFlopsPerStep,
      },
      hostSeconds: device.hostSeconds,
      deviceSeconds: device.deviceSeconds,
      deviceTime: device.deviceTime,
      energy: device.energy,
      costEffectiveness: device.energy.total > 0 ? result.finalAverageAccuracy / device.energy.total : 0,
      profiling: device.profiling,
      energyPerTask: [...accountingPlugin.perTask],
      miro: miro?.report() ?? null,
    };
  } finally {
    if (accounting.meter.state === 'running') accounting.meter.stop();
    miro?.close();
    await hierarchy?.close();
    trainer.dispose();
    model.dispose();
  }
}
