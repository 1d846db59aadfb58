import { Command } from 'commander';
import type { Logger } from 'pino';
import { BUDGET_REQUESTS, type BudgetRequest } from '../../simulation/simulation-config.js';
import { checkRedisUrl, redactRedisUrl } from '../../simulation/redis/redis-connection.js';
import { WorkerHost } from '../../simulation/redis/worker-host.js';
import { choiceFlag, intFlag, numberFlag, queueFlag } from '../flags.js';

interface WorkerFlags {
  redis: string;
  queue?: string;
  name?: string;
  workers?: number;
  slots?: number;
  budget?: BudgetRequest;
  stallSeconds?: number;
}

export function workerCommand(getLogger: () => Logger): Command {
  return new Command('worker')
    .description('a worker host for simulations over Redis: takes client-training jobs (BullMQ) and runs them with the device runtime under the clients\' CPU budgets, until stopped')
    .requiredOption('--redis <url>', 'the Redis the simulation host dispatches through (redis://HOST:PORT)', (v: string) => checkRedisUrl(v, '--redis'))
    .option('--queue <name>', 'BullMQ queue to take jobs from (default clients; the simulation\'s --queue)', (v: string) => queueFlag(v))
    .option('--name <name>', 'this host\'s name in reports (default HOSTNAME-PID)')
    .option('--workers <n>', 'worker processes: cores of client budget run at once (default 1)', intFlag('--workers', 1, 256))
    .option('--slots <n>', 'most clients one worker process runs at once (default 8)', intFlag('--slots', 1, 64))
    .option('--budget <how>', `${BUDGET_REQUESTS.join(' | ')}: how client budgets are enforced here (default auto)`, choiceFlag('--budget', BUDGET_REQUESTS))
    .option('--stall-seconds <s>', 'job lock: a host killed mid-job has its jobs re-run elsewhere within about twice this (default 30; use the same on every host)', numberFlag('--stall-seconds', 0.5, 3600))
    .action(async (flags: WorkerFlags) => {
      const log = getLogger().child({ component: 'worker' });
      const host = new WorkerHost({
        redis: flags.redis, logger: getLogger(),
        ...(flags.queue !== undefined ? { queue: flags.queue } : {}), ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.workers !== undefined ? { workers: flags.workers } : {}), ...(flags.slots !== undefined ? { slots: flags.slots } : {}),
        ...(flags.budget !== undefined ? { budget: flags.budget } : {}),
        ...(flags.stallSeconds !== undefined ? { stallMs: Math.round(flags.stallSeconds * 1000) } : {}),
      });
      await host.start();
      const o = host.options;
      process.stdout.write(`worker host ${o.name} ready: ${redactRedisUrl(o.redis)} queue ${o.queue}, ${o.workers} worker(s) x ${o.slots} slot(s), budgets ${host.enforcer?.kind}\n`);
      // First SIGINT/SIGTERM: take no more jobs, finish the running ones, exit; a second one exits at once.
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (sig: NodeJS.Signals): void => {
          if (stopping) process.exit(130);
          stopping = true;
          log.warn({ signal: sig }, 'finishing the running client jobs, then stopping (signal again to quit now)');
          void host.stop().then(resolve, resolve);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      const s = host.stats();
      process.stdout.write(`worker host ${s.name} stopped: ${s.jobs} client jobs, ${s.failed} failed, ${s.runs} run(s)\n`);
    });
}
