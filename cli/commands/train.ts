import os from 'node:os';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { StrataError } from '../../common/strata-error.js';
import { initBackend } from '../../ml/backend.js';
import { parseThreadsRequest } from '../../ml/threads.js';
import { loadDataset, parseDatasetSpec } from '../../ml/datasets/load-dataset.js';
import { buildModel, modelInputShape, modelSpecName, parameterCount, parseModelSpec } from '../../ml/models.js';
import { Trainer } from '../../ml/trainer.js';
import { backendFlag, intFlag, numberFlag, choiceFlag } from '../flags.js';
import { createProgress } from '../progress.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';

const threadsFlag = (value: string): string => String(parseThreadsRequest(value, '--threads'));

export interface TrainReport {
  command: 'train';
  dataset: string;
  /** `mlp`, `cnn`, or the model.json's path. */
  model: string;
  backend: string;
  backendInfo: object;
  /** Threads that trained (see backendInfo.threads). */
  threads: number;
  /** `fast` (Strata's hand-written step) or `autograd` (tfjs), with the reason. */
  stepPath: object;
  epochs: number;
  batchSize: number;
  seed: number;
  learningRate: number;
  optimizer: string;
  parameters: number;
  trainSamples: number;
  testSamples: number;
  testAccuracy: number;
  testLoss: number;
  trainLoss: number;
  trainSeconds: number;
  samplesPerSecond: number;
  host: { cpus: number; cpuModel: string; node: string };
  startedAt: string;
  outDir: string;
}

interface TrainFlags {
  dataset: string;
  model: string;
  epochs: number;
  batch: number;
  lr?: number;
  optimizer: 'adam' | 'sgd';
  seed: number;
  backend?: string;
  threads?: string;
  out?: string;
  json?: boolean;
}

export function trainCommand(getLogger: () => Logger): Command {
  return new Command('train')
    .description('centralized baseline: train a model on a whole data set and test it')
    .option('--dataset <name>', 'mnist | synthetic | idx:DIR | csv:DIR | images:DIR', 'mnist')
    .option('--model <spec>', 'mlp | cnn | PATH to a tfjs Layers model.json', 'mlp')
    .option('--epochs <n>', 'passes over the training set', intFlag('--epochs'), 2)
    .option('--batch <n>', 'batch size', intFlag('--batch'), 64)
    .option('--lr <rate>', 'learning rate (default 0.001 adam, 0.05 sgd)', numberFlag('--lr', 0, 10, true))
    .option('--optimizer <kind>', 'adam | sgd', choiceFlag('--optimizer', ['adam', 'sgd'] as const), 'adam')
    .option('--seed <n>', 'seed for weights and shuffling', intFlag('--seed', 0), 1)
    .option('--backend <name>', 'auto | tfjs-node | wasm | cpu (default: STRATA_BACKEND or auto)', backendFlag)
    .option('--threads <n>', 'training threads: auto | N (default: STRATA_THREADS or auto, the cores this process may use)', threadsFlag)
    .option('--out <dir>', 'run directory (default runs/train-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout')
    .action(async (flags: TrainFlags) => {
      const report = await runTrain(flags, getLogger());
      if (flags.json === true) printJsonReport(report);
      else process.stdout.write(`test accuracy ${report.testAccuracy.toFixed(4)} | ${report.samplesPerSecond.toFixed(0)} samples/s on ${report.backend} (${report.threads} thread${report.threads === 1 ? '' : 's'}) | report ${report.outDir}/report.json\n`);
    });
}

export async function runTrain(flags: TrainFlags, logger: Logger): Promise<TrainReport> {
  const spec = parseDatasetSpec(flags.dataset);
  if (spec.split) throw new StrataError('STRATA_ERR_BAD_FLAG', `--dataset: '${flags.dataset}' is a continual-learning split; use it with 'strata cl'`, { flag: '--dataset' });
  const modelSpec = parseModelSpec(flags.model, '--model');
  const outDir = prepareRunDir('train', flags.out);
  const log = logger.child({ component: 'train' });
  const backend = await initBackend({ backend: flags.backend, threads: flags.threads });
  log.info({ backend: backend.name, kernels: backend.kernels, threads: backend.threads, fallbacks: backend.fallbacks }, `tfjs backend: ${backend.name}, ${backend.threads} training thread(s)`);
  const ds = await loadDataset(spec, { inputShape: modelInputShape(modelSpec) });
  log.info({ dataset: ds.name, train: ds.train.count, test: ds.test.count, inputShape: ds.inputShape, classes: ds.numClasses }, 'data set loaded');
  const model = await buildModel(modelSpec, ds, flags.seed);
  const trainer = new Trainer(model, {
    featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale, optimizer: flags.optimizer, learningRate: flags.lr,
  });
  log.info({ stepPath: trainer.stepPath }, trainer.stepPath.kind === 'fast' ? 'training step: fast (by hand on the wasm heap)' : `training step: tfjs autograd (${trainer.stepPath.reason})`);
  const startedAt = new Date().toISOString();
  const stepsPerEpoch = Math.ceil(ds.train.count / flags.batch);
  const progress = createProgress({ label: 'train', total: stepsPerEpoch * flags.epochs, logger: log, format: 'epoch {epoch} loss {loss}' });
  let steps = 0;
  const fit = trainer.fit(ds.train, {
    epochs: flags.epochs, batchSize: flags.batch, seed: flags.seed,
    onStep: ({ epoch, loss }) => {
      steps++;
      if (steps % 10 === 0 || steps === stepsPerEpoch * flags.epochs) progress.update(steps, { epoch: epoch + 1, loss: loss.toFixed(3) });
    },
  });
  progress.stop();
  const evaluation = trainer.evaluate(ds.test);
  trainer.dispose();
  const cpus = os.cpus();
  const report: TrainReport = {
    command: 'train',
    dataset: ds.name,
    model: modelSpecName(modelSpec),
    backend: backend.name,
    backendInfo: backend,
    threads: backend.threads,
    stepPath: trainer.stepPath,
    epochs: flags.epochs,
    batchSize: flags.batch,
    seed: flags.seed,
    learningRate: flags.lr ?? (flags.optimizer === 'adam' ? 0.001 : 0.05),
    optimizer: flags.optimizer,
    parameters: parameterCount(model),
    trainSamples: ds.train.count,
    testSamples: ds.test.count,
    testAccuracy: evaluation.accuracy,
    testLoss: evaluation.loss,
    trainLoss: fit.loss,
    trainSeconds: fit.seconds,
    samplesPerSecond: fit.samplesPerSecond,
    host: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version },
    startedAt,
    outDir,
  };
  writeReport(outDir, report);
  log.info({ testAccuracy: report.testAccuracy, samplesPerSecond: Math.round(report.samplesPerSecond) }, 'training done');
  return report;
}
