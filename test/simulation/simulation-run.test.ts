import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../simulation/simulation-host.js';
import { silentLogger, smallConfig, tmpDir } from './helpers.js';

describe('strata simulate (host, worker pool, naive mode)', () => {
  it('scheduled and naive runs of the same seed end with the same model; each worker gets the model once per round', async () => {
    const cfg = smallConfig({ rounds: 2, clients: 6, perRound: 3 });
    const scheduled = await runSimulation(cfg, tmpDir(), silentLogger);
    const naive = await runSimulation({ ...cfg, mode: 'naive' }, tmpDir(), silentLogger);
    expect(scheduled.rounds).toHaveLength(2);
    expect(scheduled.finalAccuracy).toBeGreaterThan(0.3);
    expect(naive.finalAccuracy).toBe(scheduled.finalAccuracy);
    expect(naive.finalLoss).toBe(scheduled.finalLoss);
    expect(naive.rounds.map((r) => r.participants)).toEqual(scheduled.rounds.map((r) => r.participants));
    const s = scheduled.scheduler;
    if (s.mode !== 'scheduled') throw new Error('expected scheduled');
    expect(s.modelSends).toBeLessThanOrEqual(cfg.workers * cfg.rounds);
    expect(s.restarts).toBe(0);
    const n = naive.scheduler;
    if (n.mode !== 'naive') throw new Error('expected naive');
    expect(n.processes).toBe(scheduled.rounds.reduce((k, r) => k + r.participants.length + r.stragglers.length, 0));
    // Report shape the CLI contract relies on.
    const r0 = scheduled.rounds[0]!;
    for (const k of ['accuracy', 'loss', 'wallSeconds', 'virtualSeconds', 'participants', 'stragglers', 'dropouts', 'energyJoules'] as const) expect(r0).toHaveProperty(k);
    expect(scheduled.clients).toHaveLength(6);
    expect(scheduled.virtualSeconds).toBeGreaterThan(0);
  });

  it('a worker that dies is replaced, its clients re-run, and the run ends as if nothing happened', async () => {
    const cfg = smallConfig({ rounds: 2, clients: 6, perRound: 4 });
    const clean = await runSimulation(cfg, tmpDir(), silentLogger);
    const faulty = await runSimulation(cfg, tmpDir(), silentLogger, { killWorkerInRound: 1 });
    const s = faulty.scheduler;
    if (s.mode !== 'scheduled') throw new Error('expected scheduled');
    expect(s.restarts).toBe(1);
    expect(s.notes.join(' ')).toMatch(/died/);
    expect(s.jobsStarted).toBeGreaterThan(faulty.rounds.reduce((k, r) => k + r.participants.length + r.stragglers.length, 0));
    expect(faulty.rounds).toHaveLength(2);
    expect(faulty.finalAccuracy).toBe(clean.finalAccuracy);
  });

  it('over-commitment and a deadline make stragglers; dropouts follow the profile', async () => {
    const cfg = smallConfig({ rounds: 2, clients: 8, perRound: 3, overcommit: 2, profiles: 'phone-lowend,reference-host' });
    const r = await runSimulation(cfg, tmpDir(), silentLogger);
    for (const round of r.rounds) {
      expect(round.selected).toBe(6);
      expect(round.participants.length).toBeLessThanOrEqual(3);
      expect(round.participants.length + round.stragglers.length + round.dropouts.length).toBe(6);
    }
    expect(r.rounds.reduce((k, x) => k + x.stragglers.length, 0)).toBeGreaterThan(0);
  });

  it('--cl: clients stream split tasks with their own SQLite stores; accuracy on seen classes after each task', async () => {
    const dir = tmpDir();
    const cfg = smallConfig({ cl: true, tasks: 2, rounds: 4, clients: 4, perRound: 2, memory: 50, replay: 16 });
    const r = await runSimulation(cfg, dir, silentLogger);
    expect(r.cl?.tasks.map((t) => t.task)).toEqual([0, 1]);
    for (const t of r.cl!.tasks) expect(t.accuracySeen).toBeGreaterThan(0);
    expect(r.rounds.every((x) => x.accuracySeen !== undefined)).toBe(true);
    const someClient = r.rounds[0]!.participants[0]!;
    expect(existsSync(path.join(dir, 'clients', `c${someClient}`, 'samples.sqlite'))).toBe(true);
    expect(readFileSync(path.join(dir, 'clients', `c${someClient}`, 'em.bin')).length).toBeGreaterThan(0);
  });
});
