import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { CL_DEFAULTS, runClExperiment, type ClConfig, type ClReport } from '../../client-runtime/cl-experiment.js';
import { CL_METHODS } from '../../client-runtime/cl-strategies/index.js';
import type { StorageBudget } from '../../client-runtime/memory-hierarchy.js';
import { MIRO_DEFAULTS } from '../../client-runtime/miro/miro-profiler.js';
import { MIRO_SPACE_DEFAULTS } from '../../client-runtime/miro/candidate-space.js';
import { NAVIGATORS, type NavigatorName } from '../../client-runtime/miro/navigators.js';
import { initBackend } from '../../ml/backend.js';
import { parseThreadsRequest } from '../../ml/threads.js';
import { parseDatasetSpec } from '../../ml/datasets/load-dataset.js';
import { parseModelKind } from '../../ml/models.js';
import { loadProfile } from '../../profiles/profile-loader.js';
import { badFlag, choiceFlag, intFlag, numberFlag } from '../flags.js';
import { createProgress } from '../progress.js';
import { clReportHtml } from '../reports/cl-report-html.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';

const threadsFlag = (value: string): string => String(parseThreadsRequest(value, '--threads'));

function storageFlag(value: string): StorageBudget {
  if (value === 'all' || value === 'none') return value;
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value);
  throw badFlag('--storage', value, 'all, none or a positive number of samples');
}

function listFlag(flag: string, ok: (n: number) => boolean, expected: string): (value: string) => number[] {
  return (value: string) => {
    const parts = value.split(',').map((x) => x.trim());
    const nums = parts.map(Number);
    if (parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n) || !ok(n))) throw badFlag(flag, value, `a comma-separated list of ${expected}`);
    return nums;
  };
}

interface ClFlags {
  dataset: string; model: string; tasks: number; epochs: number; batch: number; replay: number;
  method: ClConfig['method']; memory: number; storage: StorageBudget; swap: ClConfig['swap']; swapRatio: number;
  policy: ClConfig['policy']; storageLatencyMs?: number; profile?: string; profiler: 'off' | 'miro';
  streamBuffer: number; profileFromTask?: number; profileDataRatio?: number; navigator?: NavigatorName; navigatorFraction?: number;
  cutline?: number; miroMemories?: number[]; miroStreamBuffers?: number[]; miroSwapRatios?: number[]; miroValidation?: number;
  minTrialSteps?: number; profileEvery?: number; profilingBudget?: number; skipMootTrials?: boolean;
  optimizer: ClConfig['optimizer']; lr?: number; seed: number; backend?: string; threads?: string; out?: string; json?: boolean;
}

export function clCommand(getLogger: () => Logger): Command {
  const d = CL_DEFAULTS;
  return new Command('cl')
    .description('continual learning on one device: class-incremental tasks with the CarM memory hierarchy')
    .option('--dataset <name>', 'split-mnist | split-synthetic | split-idx:DIR', 'split-mnist')
    .option('--model <kind>', 'mlp | cnn', d.model)
    .option('--tasks <n>', 'tasks in the split', intFlag('--tasks', 1, 255), d.tasks)
    .option('--epochs <n>', 'epochs per task', intFlag('--epochs'), d.epochs)
    .option('--batch <n>', 'stream samples per step', intFlag('--batch'), d.batch)
    .option('--replay <n>', 'memory samples replayed per step', intFlag('--replay', 0), d.replay)
    .option('--method <name>', CL_METHODS.join(' | '), choiceFlag('--method', CL_METHODS), d.method)
    .option('--memory <n>', 'episodic memory slots in RAM', intFlag('--memory', 1), d.memory)
    .option('--storage <budget>', 'all | none | N samples kept in SQLite', storageFlag, d.storage)
    .option('--swap <mode>', 'async | sync | off', choiceFlag('--swap', ['async', 'sync', 'off'] as const), d.swap)
    .option('--swap-ratio <r>', 'fraction of replayed EM samples swapped per step', numberFlag('--swap-ratio', 0, 1), d.swapRatio)
    .option('--policy <name>', 'random | hybrid | dynamic', choiceFlag('--policy', ['random', 'hybrid', 'dynamic'] as const), d.policy)
    .option('--storage-latency-ms <ms>', "per-read storage latency the swap worker waits (default: the profile's, else 0)", numberFlag('--storage-latency-ms', 0, 10_000))
    .option('--stream-buffer <f>', 'fraction of each task\'s stream kept for training', numberFlag('--stream-buffer', 0, 1, true), d.streamBuffer)
    .option('--profile <name>', `device profile name or JSON file; device time and energy are accounted for it (default ${d.profile})`)
    .option('--profiler <mode>', 'off | miro', choiceFlag('--profiler', ['off', 'miro'] as const), 'off')
    .option('--profile-from-task <n>', `Miro: first task (0-based) profiled before; earlier tasks use the flags (default ${MIRO_DEFAULTS.profileFromTask})`, intFlag('--profile-from-task', 0, 254))
    .option('--profile-data-ratio <r>', `Miro: share of the next task's stream buffer and of the EM a trial uses (default ${MIRO_DEFAULTS.dataRatio})`, numberFlag('--profile-data-ratio', 0, 1, true))
    .option('--navigator <name>', `Miro: ${NAVIGATORS.join(' | ')} (default ${MIRO_DEFAULTS.navigator})`, choiceFlag('--navigator', NAVIGATORS))
    .option('--navigator-fraction <f>', `Miro: share of the candidates a random round tries, at least 3 (default ${MIRO_DEFAULTS.navigatorFraction})`, numberFlag('--navigator-fraction', 0, 1, true))
    .option('--cutline <f>', `Miro: top fraction by accuracy kept before the accuracy-per-joule pick (default ${MIRO_DEFAULTS.cutline})`, numberFlag('--cutline', 0, 1, true))
    .option('--miro-memories <list>', `Miro: candidate EM sizes (default ${MIRO_SPACE_DEFAULTS.memories.join(',')})`, listFlag('--miro-memories', (n) => Number.isInteger(n) && n >= 1, 'integers >= 1'))
    .option('--miro-stream-buffers <list>', `Miro: candidate stream-buffer fractions (default ${MIRO_SPACE_DEFAULTS.streamBuffers.join(',')})`, listFlag('--miro-stream-buffers', (n) => n > 0 && n <= 1, 'fractions in (0, 1]'))
    .option('--miro-swap-ratios <list>', `Miro: candidate swap ratios (default ${MIRO_SPACE_DEFAULTS.swapRatios.join(',')})`, listFlag('--miro-swap-ratios', (n) => n >= 0 && n <= 1, 'fractions in [0, 1]'))
    .option('--miro-validation <n>', `Miro: held-out samples per task the trials are scored on (default ${MIRO_DEFAULTS.validationPerTask})`, intFlag('--miro-validation', 1))
    .option('--min-trial-steps <n>', `Miro: fewest training steps a trial runs, past the new task's first transient (default ${MIRO_DEFAULTS.minTrialSteps})`, intFlag('--min-trial-steps', 1))
    .option('--profile-every <n>', `Miro: at most one profiled boundary in this many (default ${MIRO_DEFAULTS.profileEvery})`, intFlag('--profile-every', 1))
    .option('--profiling-budget <f>', `Miro: share of the run's energy profiling may take; 1 profiles every boundary (default ${MIRO_DEFAULTS.profilingBudget})`, numberFlag('--profiling-budget', 0, 1, true))
    .option('--no-skip-moot-trials', "Miro: run the round's last trial even when no accuracy it could reach would change the choice")
    .option('--optimizer <kind>', 'sgd | adam', choiceFlag('--optimizer', ['sgd', 'adam'] as const), d.optimizer)
    .option('--lr <rate>', `learning rate (default ${d.learningRate} sgd, 0.001 adam)`, numberFlag('--lr', 0, 10, true))
    .option('--seed <n>', 'seed for task order, sampling and weights', intFlag('--seed', 0), d.seed)
    .option('--backend <name>', 'auto | tfjs-node | wasm | cpu')
    .option('--threads <n>', 'training threads: auto | N (default: STRATA_THREADS or auto)', threadsFlag)
    .option('--out <dir>', 'run directory (default runs/cl-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout')
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
  const model = parseModelKind(flags.model);
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
    ...(flags.profiler === 'miro' ? {
      miro: {
        profileFromTask: flags.profileFromTask, dataRatio: flags.profileDataRatio, navigator: flags.navigator,
        navigatorFraction: flags.navigatorFraction, cutline: flags.cutline, memories: flags.miroMemories,
        streamBuffers: flags.miroStreamBuffers, swapRatios: flags.miroSwapRatios, validationPerTask: flags.miroValidation,
        minTrialSteps: flags.minTrialSteps, profileEvery: flags.profileEvery, profilingBudget: flags.profilingBudget, skipMootTrials: flags.skipMootTrials,
      },
    } : {}),
  };
  const dir = prepareRunDir('cl', flags.out);
  const log = logger.child({ component: 'cl' });
  const backend = await initBackend({ backend: flags.backend, threads: flags.threads });
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
