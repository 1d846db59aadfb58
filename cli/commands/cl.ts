import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { CL_DEFAULTS, runClExperiment, type ClConfig, type ClReport } from '../../client-runtime/cl-experiment.js';
import { BUILTIN_CL_METHODS } from '../../client-runtime/cl-methods/index.js';
import type { StorageBudget } from '../../client-runtime/carm/memory-hierarchy.js';
import { initBackend } from '../../ml/backend.js';
import { parseThreadsRequest } from '../../ml/threads.js';
import { parseDatasetSpec } from '../../ml/datasets/load-dataset.js';
import { modelSpecName, parseModelSpec } from '../../ml/models.js';
import { loadProfile } from '../../profiles/profile-loader.js';
import { backendFlag, badFlag, choiceFlag, intFlag, numberFlag } from '../flags.js';
import { addMiroFlags, miroOptionsOf, type MiroFlags } from '../miro-flags.js';
import { createProgress } from '../progress.js';
import { clReportHtml } from '../reports/cl-report-html.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';

const threadsFlag = (value: string): string => String(parseThreadsRequest(value, '--threads'));

function storageFlag(value: string): StorageBudget {
  if (value === 'all' || value === 'none') return value;
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value);
  throw badFlag('--storage', value, 'all, none or a positive number of samples');
}

interface ClFlags extends MiroFlags {
  dataset: string; model: string; tasks: number; epochs: number; batch: number; replay: number;
  method: ClConfig['method']; memory: number; storage: StorageBudget; swap: ClConfig['swap']; swapRatio: number;
  policy: ClConfig['policy']; storageLatencyMs?: number; profile?: string; profiler: 'off' | 'miro';
  streamBuffer: number;
  optimizer: ClConfig['optimizer']; lr?: number; seed: number; backend?: string; threads?: string; out?: string; json?: boolean;
}

const CL_METHOD_NAMES = BUILTIN_CL_METHODS.map((m) => m.name);

export function clCommand(getLogger: () => Logger): Command {
  const d = CL_DEFAULTS;
  const cmd = new Command('cl')
    .description('continual learning on one device: class-incremental tasks with the CarM memory hierarchy')
    .option('--dataset <name>', 'split-mnist | split-synthetic | split-idx:DIR | split-csv:DIR | split-images:DIR', 'split-mnist')
    .option('--model <spec>', 'mlp | cnn | PATH to a tfjs Layers model.json', d.model)
    .option('--tasks <n>', 'tasks in the split', intFlag('--tasks', 1, 255), d.tasks)
    .option('--epochs <n>', 'epochs per task', intFlag('--epochs'), d.epochs)
    .option('--batch <n>', 'stream samples per step', intFlag('--batch'), d.batch)
    .option('--replay <n>', 'memory samples replayed per step', intFlag('--replay', 0), d.replay)
    .option('--method <name>', CL_METHOD_NAMES.join(' | '), choiceFlag('--method', CL_METHOD_NAMES), d.method)
    .option('--memory <n>', 'episodic memory slots in RAM', intFlag('--memory', 1), d.memory)
    .option('--storage <budget>', 'all | none | N samples kept in SQLite', storageFlag, d.storage)
    .option('--swap <mode>', 'async | sync | off', choiceFlag('--swap', ['async', 'sync', 'off'] as const), d.swap)
    .option('--swap-ratio <r>', 'fraction of replayed EM samples swapped per step', numberFlag('--swap-ratio', 0, 1), d.swapRatio)
    .option('--policy <name>', 'random | hybrid | dynamic', choiceFlag('--policy', ['random', 'hybrid', 'dynamic'] as const), d.policy)
    .option('--storage-latency-ms <ms>', "per-read storage latency the swap worker waits (default: the profile's, else 0)", numberFlag('--storage-latency-ms', 0, 10_000))
    .option('--stream-buffer <f>', 'fraction of each task\'s stream kept for training', numberFlag('--stream-buffer', 0, 1, true), d.streamBuffer)
    .option('--profile <name>', `device profile name or JSON file; device time and energy are accounted for it (default ${d.profile})`)
    .option('--profiler <mode>', 'off | miro', choiceFlag('--profiler', ['off', 'miro'] as const), 'off')
    .option('--optimizer <kind>', 'sgd | adam', choiceFlag('--optimizer', ['sgd', 'adam'] as const), d.optimizer)
    .option('--lr <rate>', `learning rate (default ${d.learningRate} sgd, 0.001 adam)`, numberFlag('--lr', 0, 10, true))
    .option('--seed <n>', 'seed for task order, sampling and weights', intFlag('--seed', 0), d.seed)
    .option('--backend <name>', 'auto | tfjs-node | wasm | cpu', backendFlag)
    .option('--threads <n>', 'training threads: auto | N (default: STRATA_THREADS or auto)', threadsFlag)
    .option('--out <dir>', 'run directory (default runs/cl-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout');
  return addMiroFlags(cmd)
    .action(async (flags: ClFlags) => {
      const report = await runCl(flags, getLogger());
      if (flags.json === true) printJsonReport(report);
      else {
        process.stdout.write(`final average accuracy ${report.finalAverageAccuracy.toFixed(4)} | forgetting ${report.forgetting.toFixed(4)} | ${report.trainSeconds.toFixed(1)} s training\n`);
        process.stdout.write(`device ${report.profile}: ${report.deviceSeconds.toFixed(1)} s, ${report.energy.total.toFixed(1)} J (${report.energy.source})`
          + ` | cost-effectiveness ${report.costEffectiveness.toExponential(3)} accuracy/J`
          + (report.miro === null ? '' : ` | profiling ${(report.profiling.share * 100).toFixed(1)}% of energy`) + '\n');
        process.stdout.write(`report ${path.join(report.outDir, 'report.json')} and report.html\n`);
      }
    });
}

export async function runCl(flags: ClFlags, logger: Logger): Promise<ClReport & { outDir: string }> {
  parseDatasetSpec(flags.dataset);
  const model = modelSpecName(parseModelSpec(flags.model, '--model'));
  // Validated here so a bad profile fails before any work. Only an explicit --profile makes the swap worker
  // really wait the profile's read latency (as before); the device-time model always charges it.
  const profile = flags.profile === undefined ? undefined : loadProfile(flags.profile);
  if (flags.profiler === 'miro' && flags.method === 'finetune') {
    throw badFlag('--profiler', 'miro', 'off with --method finetune (Miro tunes the episodic memory; use er or derpp)');
  }
  const config: ClConfig = {
    dataset: flags.dataset, model, tasks: flags.tasks, epochs: flags.epochs, batch: flags.batch, replay: flags.replay,
    method: flags.method, memory: flags.memory, storage: flags.storage, swap: flags.storage === 'none' ? 'off' : flags.swap,
    swapRatio: flags.swapRatio, policy: flags.policy,
    storageLatencyMs: flags.storageLatencyMs ?? profile?.storage.latencyMs ?? 0,
    optimizer: flags.optimizer, learningRate: flags.lr ?? (flags.optimizer === 'adam' ? 0.001 : CL_DEFAULTS.learningRate),
    derppAlpha: CL_DEFAULTS.derppAlpha, seed: flags.seed,
    streamBuffer: flags.streamBuffer, profile: flags.profile ?? CL_DEFAULTS.profile, profiler: flags.profiler,
    ...(flags.profiler === 'miro' ? { miro: miroOptionsOf(flags) } : {}),
  };
  const dir = prepareRunDir('cl', flags.out);
  const log = logger.child({ component: 'cl' });
  // CarM's async swap worker decodes samples beside the training loop: with threads auto it keeps a core.
  const backend = await initBackend({ backend: flags.backend, threads: flags.threads, busyThreads: config.swap === 'async' ? 1 : 0 });
  log.info({ backend: backend.name, config }, `continual learning: ${config.method} on ${config.dataset}`);
  let progress: ReturnType<typeof createProgress> | undefined;
  const report = await runClExperiment(config, dir, backend, log, {
    onStep: ({ task, tasks, step, stepsPerTask, loss }) => {
      progress ??= createProgress({ label: 'cl', total: tasks * stepsPerTask, logger: log, format: 'task {task} loss {loss}' });
      if (step % 20 === 0 || step === stepsPerTask) progress.update(task * stepsPerTask + step, { task: `${task + 1}/${tasks}`, loss: loss.toFixed(3) });
    },
  });
  progress?.stop();
  const full = { ...report, outDir: dir };
  writeReport(dir, full);
  writeFileSync(path.join(dir, 'report.html'), clReportHtml(report));
  return full;
}
