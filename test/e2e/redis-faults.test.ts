/**
 * Simulations over Redis under faults, with real processes: a real
 * redis-server, `strata worker` hosts killed with SIGKILL mid-round, and a
 * `strata simulate` host killed mid-run and started again on its run
 * directory. STRATA_E2E=1 (about a minute or two on 2 cores).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulationStrategy } from '../../cli/strategies.js';
import { compileSimulationConfig } from '../../simulation/simulation-config.js';
import { runSimulation } from '../../simulation/simulation.js';
import type { SimulationReport } from '../../simulation/simulation-report.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { finalModelDiff, silentLogger, simulate, tmpDir } from '../simulation/helpers.js';
import { NO_REDIS, hasRedis, startRedis, type RedisServer } from '../../testing/redis-server.js';
import { ProcessGroup, e2eSlowEnabled, type StrataProcess } from './processes.js';

if (e2eSlowEnabled && !hasRedis) process.stderr.write(`${NO_REDIS}\n`);

/** Slow devices (a tenth of a core), so a job lasts a few seconds and a host can be killed while it runs one. */
const CONFIG = compileSimulationConfig({
  flags: {
    dataset: 'mnist', model: 'mlp', clients: 30, perRound: 4, rounds: 5, profiles: 'phone-lowend,jetson-nano-5w', budget: 'duty',
    workers: 2, slotsPerWorker: 4, evalSamples: 1000, seed: 3,
  },
});
const STALL = '1';

describe.runIf(e2eSlowEnabled && hasRedis)('simulate --redis under faults (real redis-server, worker and simulation host processes)', () => {
  let redis: RedisServer | undefined;
  const procs = new ProcessGroup();
  let local: SimulationReport | undefined;
  let names = 0;
  const startHost = (): StrataProcess => {
    const name = `host-${++names}`;
    return procs.start(name, ['worker', '--redis', redis!.url, '--name', name, '--slots', '4', '--budget', 'duty', '--stall-seconds', STALL]);
  };

  beforeAll(async () => {
    redis = await startRedis();
    local = await simulate(CONFIG, tmpDir());
  });
  afterAll(async () => {
    await procs.killAll();
    await redis?.stop();
  });

  it('kill -9 of a worker host mid-round, three times: every round completes, no update counted twice, the same model as local mode', { timeout: 300_000 }, async () => {
    const live = [startHost(), startHost()];
    await Promise.all(live.map((p) => p.waitLog((l) => l.event === 'worker-host.ready', 60_000, 'worker host ready')));
    const connection = new Redis(redis!.url, { maxRetriesPerRequest: null });
    const queue = new Queue('clients', { connection, prefix: 'strata' });
    let round = 0;
    let done = false;
    const killed: string[] = [];
    // In rounds 2, 3 and 4: SIGKILL a host while it runs a client of that round, and start a fresh host in its place.
    const killer = (async () => {
      while (!done && killed.length < 3) {
        await new Promise((r) => setTimeout(r, 50));
        if (round < killed.length + 1) continue;
        const active = await queue.getActive();
        const victim = live.find((p) => p.running && active.some((j) => j.processedBy === p.name && j.id?.includes(`-r${round + 1}-`)));
        if (victim === undefined) continue;
        await victim.kill('SIGKILL');
        killed.push(victim.name);
        live.splice(live.indexOf(victim), 1, startHost());
      }
    })();
    let report: SimulationReport;
    try {
      report = await runSimulation({ config: CONFIG, strategy: simulationStrategy(CONFIG), outDir: tmpDir(), logger: silentLogger, redis: { url: redis!.url }, hooks: {
        onRound: (r) => { round = r.round; },
      } });
    } finally {
      done = true;
      await killer;
      await queue.close();
      connection.disconnect();
    }
    expect(killed).toHaveLength(3);
    expect(report.rounds).toHaveLength(CONFIG.rounds);
    const s = report.scheduler;
    if (s.mode !== 'redis') throw new Error('expected the redis scheduler');
    // The killed hosts' jobs ran again elsewhere.
    expect(s.reruns).toBeGreaterThanOrEqual(3);
    for (const r of report.rounds) {
      expect(r.participants).toHaveLength(CONFIG.perRound);
      expect(new Set(r.participants).size).toBe(r.participants.length);
    }
    // The engine's update log: one accepted update per client per round, each applied once.
    const store = CoordinatorStore.open(report.storeFile);
    try {
      const log = store.updateLog();
      const keys = log.map((u) => `${u.roundId}/${u.agentId}`);
      expect(new Set(keys).size).toBe(keys.length);
      expect(log.every((u) => u.status === 'applied')).toBe(true);
      expect(log).toHaveLength(CONFIG.rounds * CONFIG.perRound);
    } finally {
      store.close();
    }
    expect(finalModelDiff(local!.storeFile, report.storeFile)).toBeLessThanOrEqual(1e-4);
    expect(report.rounds.map((r) => r.participants)).toEqual(local!.rounds.map((r) => r.participants));
  });

  it('a simulation host killed mid-run and started again on its run directory resumes and ends with the uninterrupted run\'s model', { timeout: 300_000 }, async () => {
    // The hosts the first test left running serve this run too.
    const hosts = procs.all.filter((p) => p.running && p.name.startsWith('host-'));
    while (hosts.length < 2) hosts.push(startHost());
    await Promise.all(hosts.map((p) => p.waitLog((l) => l.event === 'worker-host.ready', 60_000, 'worker host ready')));
    const out = tmpDir();
    const args = [
      'simulate', '--redis', redis!.url, '--out', out, '--dataset', 'mnist', '--model', 'mlp', '--clients', String(CONFIG.clients), '--per-round', String(CONFIG.perRound),
      '--rounds', String(CONFIG.rounds), '--profiles', CONFIG.profiles, '--eval-samples', String(CONFIG.evalSamples), '--seed', String(CONFIG.seed),
    ];
    const first = procs.start('simulate-1', args);
    await first.waitLog((l) => l['progress'] === 'simulate' && Number(l['done']) >= 2, 120_000, 'two rounds done');
    expect((await first.kill('SIGKILL')).signal).toBe('SIGKILL');
    const second = procs.start('simulate-2', args);
    expect((await second.exited).code).toBe(0);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as SimulationReport;
    const s = report.scheduler;
    if (s.mode !== 'redis') throw new Error('expected the redis scheduler');
    expect(s.replayed).toBeGreaterThanOrEqual(2 * CONFIG.perRound);
    expect(report.rounds).toHaveLength(CONFIG.rounds);
    expect(finalModelDiff(local!.storeFile, report.storeFile)).toBeLessThanOrEqual(1e-4);
    expect(report.finalAccuracy).toBe(local!.finalAccuracy);
  });
});
