import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Logger } from 'pino';
import {
  BUDGET_REQUESTS, SIM_MODES, compileSimulationConfig, readConfigFile, runSimulation, simulationDefaults,
  type SimulationConfig, type SimulationReport,
} from '../../simulation/index.js';
import { STRATEGY_NAMES } from '../../coordinator/strategies/strategy.js';
import { parsePartition } from '../../ml/datasets/partition.js';
import { choiceFlag, intFlag, numberFlag } from '../flags.js';
import { createProgress } from '../progress.js';
import { simulateReportHtml } from '../reports/simulate-report-html.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';

interface SimulateFlags extends Partial<SimulationConfig> {
  config?: string;
  out?: string;
  json?: boolean;
  method?: SimulationConfig['clMethod'];
  lr?: number;
  deadline?: number;
  slots?: number;
}

function partitionFlag(value: string): string {
  parsePartition(value, '--partition');
  return value;
}

export function simulateCommand(getLogger: () => Logger): Command {
  const d = simulationDefaults();
  return new Command('simulate')
    .description('FedHC-style simulation: many virtual clients under per-device CPU budgets on a pool of worker processes, with a virtual clock')
    .option('--config <file>', 'JSON or YAML config file; flags override it')
    .option('--clients <n>', `virtual clients (default ${d.clients})`, intFlag('--clients', 1, 100_000))
    .option('--per-round <k>', `clients counted per round (default ${d.perRound})`, intFlag('--per-round', 1))
    .option('--rounds <n>', `federated rounds (default ${d.rounds})`, intFlag('--rounds', 1))
    .option('--dataset <name>', `mnist | synthetic | idx:DIR (default ${d.dataset})`)
    .option('--model <kind>', `mlp | cnn (default ${d.model})`, choiceFlag('--model', ['mlp', 'cnn'] as const))
    .option('--partition <p>', `iid | dirichlet:ALPHA | skew:D (default ${d.partition})`, partitionFlag)
    .option('--strategy <name>', `${STRATEGY_NAMES.join(' | ')} (default ${d.strategy})`, choiceFlag('--strategy', STRATEGY_NAMES))
    .option('--profiles <spec>', 'mixed | NAME | NAME,NAME,... (default mixed)')
    .option('--budget <how>', `${BUDGET_REQUESTS.join(' | ')} (default ${d.budget})`, choiceFlag('--budget', BUDGET_REQUESTS))
    .option('--workers <n>', `worker processes (default ${d.workers}: one per core)`, intFlag('--workers', 1, 256))
    .option('--slots <n>', `most clients one worker runs at once (default ${d.slotsPerWorker})`, intFlag('--slots', 1, 64))
    .option('--mode <mode>', `${SIM_MODES.join(' | ')} (default ${d.mode})`, choiceFlag('--mode', SIM_MODES))
    .option('--cl', 'federated continual learning: client data arrives as split tasks across rounds')
    .option('--tasks <n>', `with --cl: tasks (default ${d.tasks})`, intFlag('--tasks', 1, 255))
    .option('--method <name>', `with --cl: finetune | er | derpp (default ${d.clMethod})`, choiceFlag('--method', ['finetune', 'er', 'derpp'] as const))
    .option('--memory <n>', `with --cl: episodic memory slots per client (default ${d.memory})`, intFlag('--memory', 1))
    .option('--replay <n>', `with --cl: replayed samples per step (default ${d.replay})`, intFlag('--replay', 0))
    .option('--epochs <n>', `local epochs per round (default ${d.epochs})`, intFlag('--epochs', 1))
    .option('--batch <n>', `local batch size (default ${d.batch})`, intFlag('--batch', 1))
    .option('--optimizer <kind>', `adam | sgd (default ${d.optimizer})`, choiceFlag('--optimizer', ['adam', 'sgd'] as const))
    .option('--lr <rate>', `local learning rate (default ${d.learningRate})`, numberFlag('--lr', 0, 10, true))
    .option('--overcommit <x>', `select ceil(K x this) clients; the round closes at the K-th arrival (default ${d.overcommit})`, numberFlag('--overcommit', 1, 10))
    .option('--deadline <s>', 'round deadline in virtual seconds (default none)', numberFlag('--deadline', 0))
    .option('--seed <n>', `seed (default ${d.seed})`, intFlag('--seed', 0))
    .option('--out <dir>', 'run directory (default runs/simulate-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout')
    .action(async (flags: SimulateFlags) => {
      const report = await runSimulate(flags, getLogger());
      if (flags.json === true) printJsonReport(report);
      else {
        process.stdout.write(`final accuracy ${report.finalAccuracy.toFixed(4)} | ${report.rounds.length} rounds | wall ${report.wallSeconds.toFixed(1)} s | virtual ${report.virtualSeconds.toFixed(1)} s | budgets: ${report.enforcer.kind}\n`);
        process.stdout.write(`report ${path.join(report.outDir, 'report.json')} and report.html\n`);
      }
    });
}

export async function runSimulate(flags: SimulateFlags, logger: Logger): Promise<SimulationReport> {
  const file = flags.config !== undefined ? await readConfigFile(flags.config) : undefined;
  const fromFlags: Partial<SimulationConfig> = {
    clients: flags.clients, perRound: flags.perRound, rounds: flags.rounds, dataset: flags.dataset, model: flags.model,
    partition: flags.partition, strategy: flags.strategy, profiles: flags.profiles, budget: flags.budget, workers: flags.workers,
    slotsPerWorker: flags.slots, mode: flags.mode, cl: flags.cl, tasks: flags.tasks, clMethod: flags.method, memory: flags.memory,
    replay: flags.replay, epochs: flags.epochs, batch: flags.batch, optimizer: flags.optimizer, learningRate: flags.lr,
    overcommit: flags.overcommit, deadlineSeconds: flags.deadline, seed: flags.seed,
  };
  const config = compileSimulationConfig({ ...(file !== undefined ? { file, fileName: flags.config } : {}), flags: fromFlags });
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
    report = await runSimulation(config, outDir, logger, {
      signal: drain.signal,
      onStart: ({ enforcer, backend }) => log.info({ enforcer: enforcer.kind, backend, mode: config.mode, clients: config.clients, perRound: config.perRound }, 'simulation starting'),
      onRound: (r) => progress.update(r.round, {
        round: r.round, acc: r.accuracy.toFixed(4), vtime: `${r.virtualTime.toFixed(1)}s`,
        participants: r.participants.length, stragglers: r.stragglers.length, dropouts: r.dropouts.length, wallSeconds: Number(r.wallSeconds.toFixed(2)),
      }),
    });
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
