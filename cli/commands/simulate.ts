import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import {
  BUDGET_REQUESTS, SIM_MODES, compileSimulationConfig, readConfigFile, runSimulation, simulationDefaults,
  type SimulationConfig, type SimulationReport,
} from '../../simulation/index.js';
import { STRATEGY_NAMES, simulationStrategy } from '../strategies.js';
import { parsePartition } from '../../ml/datasets/partition.js';
import { BUILTIN_CL_METHODS, findClMethod } from '../../client-runtime/cl-methods/index.js';
import { BUILTIN_CLIENT_APP, clientAppUrl, loadClientApp } from '../../simulation/client-app.js';
import { modelSpecName, parseModelSpec } from '../../ml/models/model-spec.js';
import { badFlag, choiceFlag, flagged, intFlag, numberFlag, queueFlag } from '../flags.js';
import { addMiroFlags, miroOptionsOf, type MiroFlags } from '../miro-flags.js';
import { addPrivacyFlags, differentialPrivacyOf, secureAggregationOf } from '../privacy-flags.js';
import { createProgress } from '../progress.js';
import { simulateReportHtml } from '../reports/simulate-report-html.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';
import { checkRedisUrl } from '../../simulation/redis/redis-connection.js';

interface SimulateFlags extends Partial<Omit<SimulationConfig, 'storage' | 'miro'>>, MiroFlags {
  config?: string;
  out?: string;
  json?: boolean;
  method?: SimulationConfig['clMethod'];
  clientApp?: string;
  lr?: number;
  deadline?: number;
  slots?: number;
  serverLr?: number;
  mu?: number;
  trim?: number;
  storage?: SimulationConfig['storage'];
  /** `--overcommit`: the old spelling of `--over-commit`. */
  overcommit?: number;
  redis?: string;
  queue?: string;
}

function modelFlag(value: string): string {
  return modelSpecName(parseModelSpec(value, '--model'));
}

function partitionFlag(value: string): string {
  parsePartition(value, '--partition');
  return value;
}

function storageFlag(value: string): SimulationConfig['storage'] {
  if (value === 'all' || value === 'none') return value;
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value);
  throw badFlag('--storage', value, 'all, none or a positive number of samples');
}

export function simulateCommand(getLogger: () => Logger): Command {
  const d = simulationDefaults();
  const cmd = addPrivacyFlags(new Command('simulate'))
    .description('simulate a federation: the coordinator\'s round engine on a virtual clock over many virtual clients, each running the device runtime under its device\'s CPU budget (FedHC)')
    .option('--config <file>', 'JSON or YAML config file; flags override it')
    .option('--clients <n>', `virtual clients (default ${d.clients})`, intFlag('--clients', 1, 100_000))
    .option('--per-round <k>', `updates a round needs, K (default ${d.perRound})`, intFlag('--per-round', 1))
    .option('--rounds <n>', `federated rounds (default ${d.rounds})`, intFlag('--rounds', 1))
    .option('--dataset <name>', `mnist | synthetic | idx:DIR | csv:DIR | images:DIR (default ${d.dataset})`)
    .option('--model <spec>', `mlp | cnn | PATH to a tfjs Layers model.json (default ${d.model})`, modelFlag)
    .option('--partition <p>', `iid | dirichlet:ALPHA | skew:D, the deal of samples to clients (an agent's --partition) (default ${d.partition})`, partitionFlag)
    .option('--strategy <name>', `${STRATEGY_NAMES.join(' | ')} (default ${d.strategy})`, choiceFlag('--strategy', STRATEGY_NAMES))
    .option('--server-lr <x>', 'server learning rate (default 1)', numberFlag('--server-lr', 0, 100, true))
    .option('--mu <x>', `FedProx proximal weight (default ${d.fedproxMu})`, numberFlag('--mu', 0))
    .option('--max-staleness <n>', `FedBuff: oldest model an update may come from (default ${d.maxStaleness})`, intFlag('--max-staleness', 0))
    .option('--trim <beta>', `trimmed-mean fraction cut from each end (default ${d.trimmedMeanBeta})`, numberFlag('--trim', 0, 0.49))
    .option('--profiles <spec>', 'mixed | NAME | NAME,NAME,... (default mixed)')
    .option('--budget <how>', `${BUDGET_REQUESTS.join(' | ')} (default ${d.budget})`, choiceFlag('--budget', BUDGET_REQUESTS))
    .option('--workers <n>', `worker processes (default ${d.workers}: one per core)`, intFlag('--workers', 1, 256))
    .option('--slots <n>', `most clients one worker runs at once (default ${d.slotsPerWorker})`, intFlag('--slots', 1, 64))
    .option('--mode <mode>', `${SIM_MODES.join(' | ')} (default ${d.mode})`, choiceFlag('--mode', SIM_MODES))
    .option('--cl', 'federated continual learning: client data arrives as split tasks across rounds')
    .option('--tasks <n>', `with --cl: tasks (default ${d.tasks})`, intFlag('--tasks', 1, 255))
    .option('--method <name>', 'finetune | er | derpp, or a method of --client-app (default er with --cl, else finetune)')
    .option('--client-app <module>', 'JavaScript module whose default export is a ClientApp (your model, data, CL methods); default: the built-in models on --dataset')
    .option('--replay <ratio>', `replayed memory samples per new sample in a batch (default ${d.replay})`, numberFlag('--replay', 0, 100))
    .option('--memory <n>', `episodic memory slots per client (default ${d.memory})`, intFlag('--memory', 1))
    .option('--storage <budget>', `all | none | N samples each client keeps in SQLite (default ${d.storage})`, storageFlag)
    .option('--swap <mode>', `async | sync | off (default ${d.swap})`, choiceFlag('--swap', ['async', 'sync', 'off'] as const))
    .option('--swap-ratio <r>', `fraction of replayed memory samples swapped per step (default ${d.swapRatio})`, numberFlag('--swap-ratio', 0, 1))
    .option('--policy <name>', `random | hybrid | dynamic (default ${d.policy})`, choiceFlag('--policy', ['random', 'hybrid', 'dynamic'] as const))
    .option('--samples-per-round <n>', 'new samples a client learns from per round (default: its whole local data; with --cl, its task slices)', intFlag('--samples-per-round', 1))
    .option('--profiler <name>', `with --cl: off | miro, Miro's online profiler in every client (default ${d.profiler})`, choiceFlag('--profiler', ['off', 'miro'] as const))
    .option('--epochs <n>', `local epochs per round (default ${d.epochs})`, intFlag('--epochs', 1))
    .option('--batch <n>', `local batch size (default ${d.batch})`, intFlag('--batch', 1))
    .option('--optimizer <kind>', `adam | sgd (default ${d.optimizer})`, choiceFlag('--optimizer', ['adam', 'sgd'] as const))
    .option('--lr <rate>', `local learning rate (default ${d.learningRate})`, numberFlag('--lr', 0, 10, true))
    .option('--over-commit <x>', `select ceil(K x this) clients; a round closes at its K-th update (default ${d.overCommit})`, numberFlag('--over-commit', 1, 10))
    .addOption(new Option('--overcommit <x>', 'old spelling of --over-commit').argParser(numberFlag('--overcommit', 1, 10)).hideHelp())
    .option('--min-clients <n>', 'idle clients a round needs to open (default K)', intFlag('--min-clients', 1))
    .option('--min-completion <f>', `fraction of K that closes a round at its deadline (default ${d.minCompletion})`, numberFlag('--min-completion', 0, 1, true))
    .option('--selection <policy>', `random | profile-aware (default ${d.selection})`, choiceFlag('--selection', ['random', 'profile-aware'] as const))
    .option('--deadline <s>', 'round deadline in virtual seconds (default none)', numberFlag('--deadline', 0))
    .option('--max-update-norm <x>', 'reject updates with a larger L2 norm (default: no bound)', numberFlag('--max-update-norm', 0, Number.MAX_VALUE, true))
    .option('--clip-norm <x>', 'scale updates down to this L2 norm (default: off)', numberFlag('--clip-norm', 0, Number.MAX_VALUE, true))
    .option('--no-dropouts', 'clients never drop out (default: at their profiles\' dropout rates)')
    .option('--eval-samples <n>', 'test samples the global model is scored on after each round (default: all)', intFlag('--eval-samples', 1))
    .option('--seed <n>', `seed (default ${d.seed})`, intFlag('--seed', 0))
    .option('--redis <url>', 'run the clients on worker hosts (strata worker) over this Redis (redis://HOST:PORT) instead of local workers; the run directory then resumes a run killed mid-way')
    .option('--queue <name>', 'with --redis: the BullMQ queue the worker hosts take jobs from (default clients)')
    .option('--out <dir>', 'run directory (default runs/simulate-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout');
  return addMiroFlags(cmd)
    .action(async (flags: SimulateFlags) => {
      const report = await runSimulate(flags, getLogger());
      if (flags.json === true) printJsonReport(report);
      else process.stdout.write(summaryLines(report));
    });
}

/** What `strata simulate` prints when it is done. */
function summaryLines(r: SimulationReport): string {
  const lines = [`final accuracy ${r.finalAccuracy.toFixed(4)} | ${r.rounds.length} rounds | wall ${r.wallSeconds.toFixed(1)} s | virtual ${r.virtualSeconds.toFixed(1)} s | budgets: ${r.enforcer.kind}`];
  if (r.scheduler.mode === 'redis') {
    const s = r.scheduler;
    lines.push(`worker hosts: ${s.hosts.map((h) => `${h.host} ${h.jobs} jobs, utilisation ${(h.utilisation * 100).toFixed(0)}%`).join('; ')}${s.reruns > 0 ? ` | ${s.reruns} re-run after a host died` : ''}${s.replayed > 0 ? ` | ${s.replayed} replayed from the checkpoint` : ''}`);
  }
  if (r.staleness.max > 0) lines.push(`update staleness: ${Object.entries(r.staleness.histogram).map(([k, v]) => `${k}: ${v}`).join(', ')} (mean ${r.staleness.mean.toFixed(2)})`);
  const v = r.validation;
  if (v.clipNorm !== null || v.maxUpdateNorm !== null || Object.keys(v.rejected).length > 0) {
    lines.push(`validation: ${v.clipped} updates clipped to ${v.clipNorm ?? '-'}, rejected ${JSON.stringify(v.rejected)} (max norm ${v.maxUpdateNorm ?? '-'})`);
  }
  if (r.privacy.secureAggregation || r.privacy.dp !== null) {
    const dp = r.privacy.dp;
    lines.push(`privacy: secure aggregation ${r.privacy.secureAggregation ? 'on' : 'off'}${dp === null ? '' : ` | dp ${dp.mode}${dp.distributed ? ' (distributed)' : ''} z=${dp.noiseMultiplier} clip=${dp.clip}: epsilon ${dp.epsilon.toFixed(3)} at delta ${dp.delta} after ${dp.rounds} rounds`}`);
  }
  if (r.miro !== undefined) {
    lines.push(`miro: ${r.miro.choices.length} boundaries profiled, ${r.miro.profilingJoules.toFixed(1)} J of profiling; chosen by profile: ${JSON.stringify(r.miro.byProfile)}`);
  }
  lines.push(`report ${path.join(r.outDir, 'report.json')} and report.html`);
  return `${lines.join('\n')}\n`;
}

export async function runSimulate(flags: SimulateFlags, logger: Logger): Promise<SimulationReport> {
  const file = flags.config !== undefined ? await readConfigFile(flags.config) : undefined;
  // The flags' own checks (which need which); the config file's are compileSimulationConfig's.
  secureAggregationOf(flags);
  differentialPrivacyOf(flags);
  const fromFlags: Partial<SimulationConfig> = {
    clients: flags.clients, perRound: flags.perRound, rounds: flags.rounds, dataset: flags.dataset, model: flags.model,
    partition: flags.partition, strategy: flags.strategy, profiles: flags.profiles, budget: flags.budget, workers: flags.workers,
    slotsPerWorker: flags.slots, mode: flags.mode, cl: flags.cl, tasks: flags.tasks, clMethod: flags.method, memory: flags.memory,
    replay: flags.replay, epochs: flags.epochs, batch: flags.batch, optimizer: flags.optimizer, learningRate: flags.lr,
    overCommit: flags.overCommit ?? flags.overcommit, deadlineSeconds: flags.deadline, seed: flags.seed,
    serverLearningRate: flags.serverLr, fedproxMu: flags.mu, maxStaleness: flags.maxStaleness, trimmedMeanBeta: flags.trim,
    minClients: flags.minClients, minCompletion: flags.minCompletion, selection: flags.selection, maxUpdateNorm: flags.maxUpdateNorm,
    clipNorm: flags.clipNorm, storage: flags.storage, swap: flags.swap, swapRatio: flags.swapRatio, policy: flags.policy,
    samplesPerRound: flags.samplesPerRound, profiler: flags.profiler, evalSamples: flags.evalSamples,
    secureAggregation: flags.secureAggregation, secaggNeighbours: flags.secaggNeighbours, secaggRange: flags.secaggRange, dp: flags.dp,
    dpNoiseMultiplier: flags.dpNoiseMultiplier, dpClip: flags.dpClip, dpEpsilon: flags.dpEpsilon, dpDelta: flags.dpDelta,
    miro: Object.keys(miroOptionsOf(flags)).length > 0 ? { ...miroOptionsOf(flags) } as Record<string, unknown> : undefined,
    // commander's --no-dropouts sets dropouts false, and true when absent: only the flag given counts.
    dropouts: flags.dropouts === false ? false : undefined,
  };
  const config = compileSimulationConfig({ ...(file !== undefined ? { file, fileName: flags.config } : {}), flags: fromFlags });
  const clientApp = flagged('--client-app', () => clientAppUrl(flags.clientApp ?? BUILTIN_CLIENT_APP));
  const app = await flagged('--client-app', () => loadClientApp(clientApp));
  flagged('--method', () => findClMethod(app.methods ?? BUILTIN_CL_METHODS, config.clMethod));
  const strategy = simulationStrategy(config);
  if (flags.queue !== undefined && flags.redis === undefined) throw badFlag('--queue', flags.queue, 'a queue name together with --redis URL');
  const redis = flags.redis !== undefined ? { url: checkRedisUrl(flags.redis, '--redis'), ...(flags.queue !== undefined ? { queue: queueFlag(flags.queue) } : {}) } : undefined;
  if (redis !== undefined && config.mode !== 'scheduled') throw badFlag('--mode', config.mode, 'scheduled with --redis (worker hosts run the clients)');
  const outDir = prepareRunDir('simulate', flags.out);
  const log = logger.child({ component: 'simulate' });
  const progress = createProgress({ label: 'simulate', total: config.rounds, logger: log, format: 'round {round} | acc {acc} | virtual {vtime}', logEveryMs: 0 });
  // First SIGINT/SIGTERM drains (the round in progress finishes, the report is written); a second one exits at once.
  const drain = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (drain.signal.aborted) process.exit(130);
    log.warn({ signal: sig }, 'finishing the current round, then writing the report (signal again to quit now)');
    drain.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let report: SimulationReport;
  try {
    report = await runSimulation({ config, strategy, clientApp, outDir, logger, ...(redis !== undefined ? { redis } : {}), hooks: {
      signal: drain.signal,
      onStart: ({ enforcer, backend }) => log.info({ enforcer: enforcer.kind, backend, mode: config.mode, clients: config.clients, perRound: config.perRound }, 'simulation starting'),
      onRound: (r) => progress.update(r.round, {
        round: r.round, acc: r.accuracy.toFixed(4), vtime: `${r.virtualTime.toFixed(1)}s`,
        participants: r.participants.length, stragglers: r.stragglers.length, dropouts: r.dropouts.length, wallSeconds: Number(r.wallSeconds.toFixed(2)),
      }),
    } });
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  writeReport(outDir, report);
  writeFileSync(path.join(outDir, 'report.html'), simulateReportHtml(report));
  log.info({ finalAccuracy: report.finalAccuracy, wallSeconds: Number(report.wallSeconds.toFixed(1)), virtualSeconds: Number(report.virtualSeconds.toFixed(1)) }, 'simulation done');
  return report;
}
