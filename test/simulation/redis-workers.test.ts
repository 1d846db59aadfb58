import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulationStrategy } from '../../cli/strategies.js';
import { isStrataError } from '../../common/strata-error.js';
import { runSimulation } from '../../simulation/simulation.js';
import { strata } from '../cli/run-strata.js';
import { ProcessGroup, freePort } from '../e2e/processes.js';
import { finalModelDiff, silentLogger, simulate, smallConfig, tmpDir } from './helpers.js';
import { NO_REDIS, hasRedis, startRedis, type RedisServer } from '../../testing/redis-server.js';

if (!hasRedis) process.stderr.write(`${NO_REDIS}\n`);

describe.skipIf(!hasRedis)('simulate --redis: worker hosts over a real Redis (two `strata worker` processes)', () => {
  let redis: RedisServer | undefined;
  const procs = new ProcessGroup();
  const hosts = ['host-a', 'host-b'];

  beforeAll(async () => {
    redis = await startRedis();
    for (const name of hosts) procs.start(name, ['worker', '--redis', redis.url, '--name', name, '--slots', '2', '--budget', 'off', '--stall-seconds', '2']);
    await Promise.all(procs.all.map((p) => p.waitLog((l) => l.event === 'worker-host.ready', 60_000, 'worker host ready')));
  });
  afterAll(async () => {
    await procs.killAll();
    await redis?.stop();
  });

  it('ends with the model local mode ends with (same seed); the report names each client\'s host; each model version is published once', async () => {
    const cfg = smallConfig({ rounds: 3, clients: 8, perRound: 3 });
    const local = await simulate(cfg, tmpDir());
    const remote = await runSimulation({ config: cfg, strategy: simulationStrategy(cfg), outDir: tmpDir(), logger: silentLogger, redis: { url: redis!.url } });
    expect(finalModelDiff(local.storeFile, remote.storeFile)).toBeLessThanOrEqual(1e-4);
    expect(remote.rounds.map((r) => r.participants)).toEqual(local.rounds.map((r) => r.participants));
    const s = remote.scheduler;
    if (s.mode !== 'redis') throw new Error(`expected the redis scheduler, got ${s.mode}`);
    const ran = remote.rounds.flatMap((r) => r.clients.filter((c) => c.status !== 'dropout'));
    for (const c of ran) expect(hosts).toContain(c.host);
    expect(s.jobsStarted).toBe(ran.length);
    expect(s.hosts.reduce((n, h) => n + h.jobs, 0)).toBe(ran.length);
    for (const h of s.hosts) {
      expect(hosts).toContain(h.host);
      expect(h.cores).toBe(1);
      expect(h.utilisation).toBeGreaterThan(0);
    }
    expect(s.modelPublishes).toBe(cfg.rounds);
    expect(s.duplicates).toBe(0);
    expect(s.replayed).toBe(0);
  });

  it('a finished run directory starts afresh; bad and unreachable Redis URLs are coded errors', async () => {
    const cfg = smallConfig({ rounds: 1, clients: 4, perRound: 2 });
    const out = tmpDir();
    const first = await runSimulation({ config: cfg, strategy: simulationStrategy(cfg), outDir: out, logger: silentLogger, redis: { url: redis!.url } });
    const again = await runSimulation({ config: cfg, strategy: simulationStrategy(cfg), outDir: out, logger: silentLogger, redis: { url: redis!.url } });
    if (again.scheduler.mode !== 'redis' || first.scheduler.mode !== 'redis') throw new Error('expected the redis scheduler');
    expect(again.scheduler.replayed).toBe(0);
    expect(again.scheduler.runId).not.toBe(first.scheduler.runId);

    const bad = await runSimulation({ config: cfg, strategy: simulationStrategy(cfg), outDir: tmpDir(), logger: silentLogger, redis: { url: 'http://127.0.0.1:1' } }).catch((e: unknown) => e);
    expect(isStrataError(bad, 'STRATA_ERR_BAD_OPTION')).toBe(true);
    const port = await freePort();
    const unreachable = await runSimulation({ config: cfg, strategy: simulationStrategy(cfg), outDir: tmpDir(), logger: silentLogger, redis: { url: `redis://127.0.0.1:${port}` } }).catch((e: unknown) => e);
    expect(isStrataError(unreachable, 'STRATA_ERR_REDIS')).toBe(true);

    const flag = strata('simulate', '--redis', 'not-a-url', '--dataset', 'synthetic', '--out', tmpDir());
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim().split('\n')).toHaveLength(1);
    const naive = strata('simulate', '--redis', redis!.url, '--mode', 'naive', '--dataset', 'synthetic', '--out', tmpDir());
    expect(naive.code).toBe(2);
    const worker = strata('worker', '--redis', `redis://127.0.0.1:${port}`);
    expect(worker.code).toBe(1);
    expect(worker.stderr).toMatch(/^strata: /);
  });
});
