import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { simulate, smallConfig, tmpDir } from './helpers.js';

describe('strata simulate: the round engine over virtual clients', () => {
  it('scheduled and naive runs of the same seed end with the same model; each worker gets each model version once', async () => {
    const cfg = smallConfig({ rounds: 2, clients: 6, perRound: 3 });
    const scheduled = await simulate(cfg, tmpDir());
    const naive = await simulate({ ...cfg, mode: 'naive' }, tmpDir());
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
    expect(n.processes).toBe(scheduled.rounds.reduce((k, r) => k + r.selected - r.dropouts.length, 0));
    // Report shape the CLI contract relies on.
    const r0 = scheduled.rounds[0]!;
    for (const k of ['accuracy', 'loss', 'wallSeconds', 'virtualSeconds', 'participants', 'stragglers', 'dropouts', 'energyJoules'] as const) expect(r0).toHaveProperty(k);
    expect(scheduled.clients).toHaveLength(6);
    expect(scheduled.virtualSeconds).toBeGreaterThan(0);
    // The engine persisted every round: the models in the run's store are the ones the report scored.
    const store = CoordinatorStore.open(scheduled.storeFile);
    try {
      expect(store.rounds().map((r) => r.status)).toEqual(['completed', 'completed']);
      expect(store.latestModel()!.accuracy).toBe(scheduled.finalAccuracy);
    } finally {
      store.close();
    }
  });

  it('the same run twice, once beside a CPU-burning process, gives the same virtual times, device seconds and joules', async () => {
    const cfg = smallConfig({ rounds: 2, clients: 4, perRound: 2, profiles: 'jetson-nano-5w,phone-lowend' });
    const a = await simulate(cfg, tmpDir());
    const burner = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    let b;
    try {
      b = await simulate(cfg, tmpDir());
    } finally {
      burner.kill('SIGKILL');
    }
    expect(b.virtualSeconds).toBe(a.virtualSeconds);
    expect(b.rounds.map((r) => r.virtualTime)).toEqual(a.rounds.map((r) => r.virtualTime));
    expect(b.clients.map((c) => [c.deviceSeconds, c.energyJoules])).toEqual(a.clients.map((c) => [c.deviceSeconds, c.energyJoules]));
  });

  it('a worker that dies is replaced, its clients re-run, and the run ends as if nothing happened', async () => {
    const cfg = smallConfig({ rounds: 2, clients: 6, perRound: 4 });
    const clean = await simulate(cfg, tmpDir());
    const faulty = await simulate(cfg, tmpDir(), { killWorkerInRound: 1 });
    const s = faulty.scheduler;
    if (s.mode !== 'scheduled') throw new Error('expected scheduled');
    expect(s.restarts).toBe(1);
    expect(s.notes.join(' ')).toMatch(/died/);
    expect(s.jobsStarted).toBeGreaterThan(faulty.rounds.reduce((k, r) => k + r.selected - r.dropouts.length, 0));
    expect(faulty.rounds).toHaveLength(2);
    expect(faulty.finalAccuracy).toBe(clean.finalAccuracy);
  });

  it('over-commitment makes stragglers (late results acked without blame); dropouts follow the profile', async () => {
    const cfg = smallConfig({ rounds: 3, clients: 8, perRound: 3, overCommit: 2, profiles: 'phone-lowend,reference-host' });
    const r = await simulate(cfg, tmpDir());
    for (const round of r.rounds) expect(round.participants).toHaveLength(3);
    // ceil(3 x 2) picked at first (and a replacement for each dropout); later rounds pick among the clients not still busy.
    expect(r.rounds[0]!.selected).toBeGreaterThanOrEqual(6);
    expect(r.rounds.reduce((k, x) => k + x.stragglers.length, 0)).toBeGreaterThan(0);
    // Stragglers were not refused: nothing was rejected.
    expect(r.validation.rejected).toEqual({});
  });

  it('with a deadline, a straggler stays busy until its late result: no client is handed a round while it still trains', async () => {
    const cfg = smallConfig({ rounds: 4, clients: 4, perRound: 2, profiles: 'phone-lowend,reference-host', deadlineSeconds: 3, dropouts: false });
    const r = await simulate(cfg, tmpDir());
    expect(r.rounds).toHaveLength(4);
    // A client handed a round while it still trains would ignore it, as an agent does: the engine never does that.
    expect(r.ignoredAssignments).toBe(0);
    for (const round of r.rounds) for (const c of round.clients.filter((x) => x.status === 'participant')) expect(c.samples).toBeGreaterThan(0);
    expect(r.rounds.some((x) => x.deadlineHit)).toBe(true);
    expect(r.rounds.reduce((k, x) => k + x.stragglers.length, 0)).toBeGreaterThan(0);
    for (const t of r.clients) expect(t.rejected).toBe(0);
  });

  it('dropouts that reconnect later keep a run with short deadlines going (no false stall)', async () => {
    const cfg = smallConfig({ rounds: 3, clients: 2, perRound: 2, profiles: 'phone-lowend', deadlineSeconds: 1, seed: 1 });
    const r = await simulate(cfg, tmpDir());
    expect(r.rounds).toHaveLength(3);
  });

  it('FedBuff: every free client trains, updates arrive stale, and the report has their staleness histogram', async () => {
    const cfg = smallConfig({ rounds: 4, clients: 6, perRound: 2, strategy: 'fedbuff', profiles: 'phone-lowend,jetson-xavier-nx' });
    const r = await simulate(cfg, tmpDir());
    expect(r.rounds).toHaveLength(4);
    expect(r.staleness.max).toBeGreaterThan(0);
    const counted = Object.values(r.staleness.histogram).reduce((a, b) => a + b, 0);
    expect(counted).toBe(r.rounds.reduce((k, x) => k + x.participants.length, 0));
    expect(Object.keys(r.staleness.histogram).some((k) => Number(k) > 0)).toBe(true);
  });

  it('--clip-norm scales updates down and --max-update-norm refuses them, as in the daemon', async () => {
    const clipped = await simulate(smallConfig({ rounds: 2, clients: 4, perRound: 2, clipNorm: 0.01 }), tmpDir());
    expect(clipped.validation).toMatchObject({ clipNorm: 0.01, maxUpdateNorm: null });
    expect(clipped.validation.clipped).toBe(4);
    for (const round of clipped.rounds) for (const c of round.clients.filter((x) => x.status === 'participant')) expect(c.clipScale).toBeLessThan(1);
    // Every update is refused: the round can never close, and the run says so instead of hanging.
    await expect(simulate(smallConfig({ rounds: 1, clients: 3, perRound: 2, maxUpdateNorm: 1e-6, deadlineSeconds: 30 }), tmpDir()))
      .rejects.toMatchObject({ code: 'STRATA_ERR_SIM_STALLED' });
  });

  it('--cl: clients stream split tasks into their own SQLite stores (ER over CarM by default); accuracy on seen classes after each task', async () => {
    const dir = tmpDir();
    const cfg = smallConfig({ cl: true, tasks: 2, rounds: 4, clients: 4, perRound: 2, memory: 50 });
    expect(cfg.clMethod).toBe('er');
    const r = await simulate(cfg, dir);
    expect(r.cl?.tasks.map((t) => t.task)).toEqual([0, 1]);
    for (const t of r.cl!.tasks) expect(t.accuracySeen).toBeGreaterThan(0);
    expect(r.rounds.every((x) => x.accuracySeen !== undefined)).toBe(true);
    const someClient = r.rounds[0]!.participants[0]!;
    expect(existsSync(path.join(dir, 'clients', `c${someClient}`, 'samples.sqlite'))).toBe(true);
    expect(existsSync(path.join(dir, 'clients', `c${someClient}`, 'samples.sqlite.em.bin'))).toBe(true);
    const entry = r.rounds.at(-1)!.clients.find((c) => c.status === 'participant')!;
    expect(entry.cl?.storedSamples).toBeGreaterThan(0);
    expect(entry.device?.config).toMatchObject({ memory: 50 });
  });

  it('--cl --profiler miro: every client profiles at its task boundaries; the report lists each choice with its candidates, by profile', async () => {
    const cfg = smallConfig({
      cl: true, tasks: 2, rounds: 4, clients: 4, perRound: 4, memory: 50, profiler: 'miro', profiles: 'jetson-nano-5w,phone-lowend', dropouts: false,
      miro: { memories: [25, 50], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', profilingBudget: 1, minTrialSteps: 5 },
    });
    const r = await simulate(cfg, tmpDir());
    const m = r.miro!;
    // Every client, at both of its tasks' first rounds.
    expect(m.choices).toHaveLength(8);
    expect(new Set(m.choices.map((c) => `${c.clientId}/${c.task}`)).size).toBe(8);
    for (const c of m.choices) {
      expect(c.round).toBe(c.task === 0 ? 1 : 3);
      // The grid's four candidates: trialed, or skipped where no score they could reach would change the choice.
      expect(c.candidates.length + c.skipped).toBe(4);
      expect(c.candidates.length).toBeGreaterThanOrEqual(2);
      expect(c.candidates.filter((x) => x.chosen).map((x) => x.key)).toEqual([c.chosen]);
      for (const x of c.candidates) {
        expect(x.accuracy).toBeGreaterThanOrEqual(0);
        expect(x.joules).toBeGreaterThan(0);
      }
      expect(c.profilingJoules).toBeGreaterThan(0);
    }
    expect(Object.keys(m.byProfile).sort()).toEqual(['jetson-nano-5w', 'phone-lowend']);
    expect(m.profilingJoules).toBeGreaterThan(0);
    // The devices price the same candidate differently: the same work, two price lists.
    const jetson = m.choices.find((c) => c.profile === 'jetson-nano-5w' && c.task === 1)!;
    const phone = m.choices.find((c) => c.profile === 'phone-lowend' && c.task === 1)!;
    const both = jetson.candidates.find((x) => phone.candidates.some((y) => y.key === x.key))!;
    expect(both.joules).not.toBeCloseTo(phone.candidates.find((y) => y.key === both.key)!.joules, 3);
    // Each round's entries carry the configuration the client trained with.
    for (const round of r.rounds) for (const c of round.clients) expect(c.device?.config).toBeDefined();
  });
});
