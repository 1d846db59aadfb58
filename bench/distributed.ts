import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { simulationStrategy } from '../cli/strategies.js';
import { compileSimulationConfig, type SimulationConfig } from '../simulation/simulation-config.js';
import { runSimulation } from '../simulation/simulation.js';
import type { SimulationReport } from '../simulation/simulation-report.js';
import { finalModelDiff } from '../testing/model-diff.js';
import { hasRedis, startRedis } from '../testing/redis-server.js';
import type { Benchmark } from './benchmark.js';

/**
 * Issue 16: the same 200-client, 20-per-round, 10-round run (MNIST MLP,
 * mixed profiles, budgets enforced) locally (one worker process) and over
 * Redis with one worker host and with two, each host one worker process
 * (its clients' budgets packed into one core, each client in its cgroup or
 * duty cycle), side by side. A real `redis-server` on loopback and real
 * `strata worker` processes. `STRATA_BENCH_DIST_SLOTS` sets each host's
 * slots (default 1: one client at a time, held to its budget), `STRATA_BENCH_DIST_ROUNDS` / `_CLIENTS` shrink the run.
 */
const bench: Benchmark = {
  description: 'strata simulate --redis: one vs two worker hosts (one core each) vs local, 200 clients x 10 rounds (20/round), MNIST MLP, budgets on',
  async run({ log }) {
    if (!hasRedis) throw new Error('the distributed bench needs redis-server (apt-get install redis-server)');
    const logger = pino({ level: process.env['STRATA_LOG_LEVEL'] ?? 'warn' });
    const slots = Number(process.env['STRATA_BENCH_DIST_SLOTS'] ?? 1);
    const config: SimulationConfig = compileSimulationConfig({
      flags: {
        dataset: 'mnist', model: 'mlp', clients: Number(process.env['STRATA_BENCH_DIST_CLIENTS'] ?? 200), perRound: 20,
        rounds: Number(process.env['STRATA_BENCH_DIST_ROUNDS'] ?? 10), profiles: 'mixed', budget: 'auto', workers: 1, slotsPerWorker: slots, seed: 1,
      },
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'strata-bench-dist-'));
    const redis = await startRedis();
    const url = redis.url;
    const hosts: ChildProcess[] = [];
    const startHost = async (name: string): Promise<void> => {
      const bin = path.resolve(import.meta.dirname, '../cli/strata.js');
      const child = spawn(process.execPath, [bin, 'worker', '--redis', url, '--name', name, '--workers', '1', '--slots', String(slots), '--budget', 'auto'], {
        stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, STRATA_LOG_LEVEL: 'warn' },
      });
      hosts.push(child);
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`worker host ${name} exited (${code})`)));
      });
    };
    const runs: Record<string, SimulationReport> = {};
    const run = async (label: string, redisUrl?: string): Promise<SimulationReport> => {
      const r = await runSimulation({
        config, strategy: simulationStrategy(config), outDir: mkdtempSync(path.join(dir, `${label}-`)), logger, ...(redisUrl !== undefined ? { redis: { url: redisUrl } } : {}),
        hooks: { onRound: (rr, n) => log(`  ${label.padEnd(9)} round ${String(rr.round).padStart(2)}/${n}: accuracy ${rr.accuracy.toFixed(4)}, wall ${rr.wallSeconds.toFixed(1)} s`) },
      });
      const hostsLine = r.scheduler.mode === 'redis' ? ` | ${r.scheduler.hosts.map((h) => `${h.host}: ${h.jobs} jobs, utilisation ${(h.utilisation * 100).toFixed(0)}%, share ${h.measuredShare?.toFixed(3)}`).join('; ')}` : '';
      log(`${label.padEnd(9)} wall ${r.wallSeconds.toFixed(1)} s, accuracy ${r.finalAccuracy.toFixed(4)}, budgets ${r.enforcer.kind} ${JSON.stringify(r.jobEnforcers)}${hostsLine}`);
      runs[label] = r;
      return r;
    };
    try {
      await run('local');
      await startHost('host-1');
      await run('one-host', url);
      await startHost('host-2');
      await run('two-hosts', url);
    } finally {
      for (const h of hosts) h.kill('SIGTERM');
      await Promise.all(hosts.map((h) => new Promise((r) => (h.exitCode !== null ? r(null) : h.once('exit', r)))));
      await redis.stop();
    }
    const local = runs['local']!;
    const one = runs['one-host']!;
    const two = runs['two-hosts']!;
    const diff = Math.max(finalModelDiff(local.storeFile, one.storeFile), finalModelDiff(local.storeFile, two.storeFile));
    const twoHostSpeedup = one.wallSeconds / two.wallSeconds;
    // Steady state: from the end of round 1 to the end of the last (start-up and the first round's warm-up excluded).
    const roundsOf = (r: SimulationReport): number => r.rounds.at(-1)!.wallTime - r.rounds[0]!.wallTime;
    const twoHostRoundsSpeedup = roundsOf(one) / roundsOf(two);
    const oneHostOverLocal = one.wallSeconds / local.wallSeconds;
    log(`two hosts vs one: ${twoHostSpeedup.toFixed(2)}x (target >= 1.7; rounds 2-${config.rounds} alone ${twoHostRoundsSpeedup.toFixed(2)}x); one host / local: ${oneHostOverLocal.toFixed(2)} (target <= 1.2); max |weight diff| vs local ${diff.toExponential(2)} (target <= 1e-4)`);
    const s2 = two.scheduler.mode === 'redis' ? two.scheduler : undefined;
    return {
      twoHostSpeedup, maxWeightDiffVsLocal: diff, oneHostOverLocal,
      twoHostRoundsSpeedup, steadyRoundSeconds: { local: roundsOf(local), oneHost: roundsOf(one), twoHosts: roundsOf(two) },
      localWallSeconds: local.wallSeconds, oneHostWallSeconds: one.wallSeconds, twoHostWallSeconds: two.wallSeconds,
      accuracy: { local: local.finalAccuracy, oneHost: one.finalAccuracy, twoHosts: two.finalAccuracy },
      enforcer: local.enforcer.kind, jobEnforcers: two.jobEnforcers, slotsPerHost: slots,
      twoHostUtilisation: s2?.hosts.map((h) => ({ host: h.host, jobs: h.jobs, utilisation: h.utilisation, measuredShare: h.measuredShare })) ?? null,
      clients: config.clients, perRound: config.perRound, rounds: config.rounds,
    };
  },
};

export default bench;
