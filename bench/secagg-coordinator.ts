/**
 * The coordinator side of `npm run bench -- secagg`, in its own process so
 * its CPU time is its own: a Coordinator over a bare vector model (no
 * evaluation), plain FedAvg or with secure aggregation. Prints its URL,
 * then, when its rounds are done, one JSON line with its CPU seconds and
 * round times; writes the final model to `weightsOut`.
 */
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { Coordinator } from '../coordinator/coordinator.js';
import { FedAvg } from '../coordinator/strategies/fedavg.js';
import { CoordinatorStore } from '../storage-tier/coordinator-store.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { params: number; clients: number; rounds: number; secure: boolean; db: string; weightsOut: string };

async function main(): Promise<void> {
  const store = CoordinatorStore.open(args.db);
  const roundSeconds: number[] = [];
  const coordinator = new Coordinator({
    port: 0, perRound: args.clients, minClients: args.clients, overCommit: 1, rounds: args.rounds, roundDeadlineMs: 600_000,
    limits: { heartbeatMs: 60_000 }, maxConcurrentUploads: 16, ...(args.secure ? { secureAggregation: true } : {}),
  }, {
    strategy: new FedAvg(), store, logger: pino({ level: 'warn' }),
    model: { layout: [{ name: 'w', shape: [args.params] }], initialWeights: () => new Float32Array(args.params) },
    onRoundCompleted: (s) => roundSeconds.push(s.seconds),
  });
  await coordinator.start();
  process.stdout.write(`url ${coordinator.url}\n`);
  const cpu0 = process.cpuUsage();
  await coordinator.finished;
  const cpu = process.cpuUsage(cpu0);
  writeFileSync(args.weightsOut, Buffer.from(coordinator.model!.weights.buffer));
  await coordinator.stop(0);
  store.close();
  process.stdout.write(`${JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, roundSeconds })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
