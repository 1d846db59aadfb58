import { describe, expect, it } from 'vitest';
import { Rng } from '../../ml/rng.js';
import { compileSimulationConfig, simulationDefaults } from '../../simulation/simulation-config.js';
import { dirichlet, partitionIndices } from '../../ml/datasets/partition.js';
import { JobEstimator, placeJobs } from '../../simulation/scheduler.js';
import { VirtualClock } from '../../simulation/virtual-clock.js';
import { periodFor } from '../../simulation/budget.js';
import { isStrataError } from '../../common/strata-error.js';

function labels(n: number, classes: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => i % classes);
}

describe('partitionIndices', () => {
  it('iid: equal, disjoint shares covering every sample, repeatable', () => {
    const parts = partitionIndices(labels(1000, 10), 1000, 7, { kind: 'iid' }, 3);
    const all = parts.flatMap((p) => [...p]);
    expect(all.length).toBe(1000);
    expect(new Set(all).size).toBe(1000);
    for (const p of parts) expect(Math.abs(p.length - 1000 / 7)).toBeLessThan(1);
    expect(partitionIndices(labels(1000, 10), 1000, 7, { kind: 'iid' }, 3)).toEqual(parts);
  });

  it('dirichlet: disjoint cover, no tiny clients, skew grows as alpha shrinks', () => {
    const lab = labels(6000, 10);
    const classesPerClient = (alpha: number): number => {
      const parts = partitionIndices(lab, 6000, 20, { kind: 'dirichlet', alpha }, 1);
      const all = parts.flatMap((p) => [...p]);
      expect(new Set(all).size).toBe(6000);
      for (const p of parts) expect(p.length).toBeGreaterThanOrEqual(10);
      // Classes holding >= 10% of a client's samples, averaged over clients.
      return parts.reduce((s, p) => {
        const counts = new Array<number>(10).fill(0);
        for (const i of p) counts[lab[i]!]!++;
        return s + counts.filter((c) => c >= 0.1 * p.length).length;
      }, 0) / parts.length;
    };
    expect(classesPerClient(0.1)).toBeLessThan(classesPerClient(100));
  });

  it('dirichlet draws sum to 1', () => {
    const p = dirichlet(50, 0.5, new Rng(1));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  });
});

describe('dynamic scheduler', () => {
  it('packs longest first, budgets <= 1 core and slots per worker, fills with shorter jobs', () => {
    const jobs = [
      { jobId: 1, profile: 'a', budget: 0.5, work: 100 },
      { jobId: 2, profile: 'a', budget: 0.5, work: 900 },
      { jobId: 3, profile: 'b', budget: 0.6, work: 800 },
      { jobId: 4, profile: 'c', budget: 0.1, work: 50 },
      { jobId: 5, profile: 'd', budget: 0.9, work: 1000 },
    ];
    const est = new JobEstimator(0.001);
    const workers = [{ id: 0, free: 1, freeSlots: 8 }, { id: 1, free: 1, freeSlots: 8 }];
    const placed = placeJobs(jobs, workers, (j) => est.estimate(j));
    const load = [0, 0];
    for (const p of placed) load[p.worker]! += p.job.budget;
    for (const l of load) expect(l).toBeLessThanOrEqual(1 + 1e-9);
    // Longest estimate first: job 2 (900/0.5) then 3 (800/0.6) then 5 (1000/0.9).
    expect(placed[0]!.job.jobId).toBe(2);
    expect(placed.map((p) => p.job.jobId)).toContain(4); // filled into leftover capacity
    expect(placed.map((p) => p.job.jobId)).not.toContain(5); // 0.9 does not fit any more
    const slotsOnly = placeJobs(jobs, [{ id: 0, free: 1, freeSlots: 1 }], (j) => est.estimate(j));
    expect(slotsOnly).toHaveLength(1);
  });

  it('estimates are refined by measured times', () => {
    const est = new JobEstimator(0.001);
    const job = { jobId: 1, profile: 'slow', budget: 0.25, work: 1000 };
    expect(est.estimate(job)).toBeCloseTo(4, 6);
    for (let i = 0; i < 20; i++) est.observe(job, { cpuSeconds: 2, wallSeconds: 8 });
    expect(est.cpuSecondsPerSample).toBeCloseTo(0.002, 4);
    expect(est.estimate(job)).toBeCloseTo(8, 0);
  });
});

describe('virtual clock', () => {
  it('runs events in time order, ties by order key then scheduling order; time only moves when an event runs', () => {
    const clock = new VirtualClock(1000);
    const seen: string[] = [];
    clock.at(1500, () => seen.push('b2'), 2);
    clock.at(1500, () => seen.push('b1'), 1);
    clock.setTimer(500, () => seen.push('timer'));
    const cancelled = clock.at(1200, () => seen.push('never'));
    clock.at(1100, () => {
      seen.push('a');
      // Scheduled in the past: runs now, after what is already due now.
      clock.at(0, () => seen.push('a-late'));
    });
    cancelled.cancel();
    expect(clock.peek()).toBe(1100);
    expect(clock.now()).toBe(1000);
    while (clock.runNext()) { /* drain */ }
    expect(seen).toEqual(['a', 'a-late', 'timer', 'b1', 'b2']);
    expect(clock.now()).toBe(1500);
    expect(clock.elapsedSeconds).toBe(0.5);
    expect(clock.runNext()).toBe(false);
  });
});

describe('budgets and config', () => {
  it('cgroup periods keep quotas >= 1 ms', () => {
    expect(periodFor(0.25)).toEqual({ periodUs: 20_000, quotaUs: 5_000 });
    expect(periodFor(0.01).quotaUs).toBeGreaterThanOrEqual(1000);
    expect(periodFor(0.01).quotaUs / periodFor(0.01).periodUs).toBeCloseTo(0.01, 3);
  });

  it('config file keys are validated by name; flags override the file', () => {
    const c = compileSimulationConfig({ file: { rounds: 3, clients: 8 }, fileName: 'x.json', flags: { rounds: 4 } });
    expect(c.rounds).toBe(4);
    expect(c.clients).toBe(8);
    expect(c.perRound).toBe(simulationDefaults().perRound);
    try {
      compileSimulationConfig({ file: { rouns: 3 }, fileName: 'x.json' });
      expect.unreachable();
    } catch (err) {
      expect(isStrataError(err, 'STRATA_ERR_BAD_CONFIG')).toBe(true);
      expect((err as Error).message).toContain('"rouns"');
    }
    try {
      compileSimulationConfig({ file: { budget: 'sometimes' }, fileName: 'x.json' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('x.json: key "budget"');
    }
    expect(() => compileSimulationConfig({ flags: { clients: 3, perRound: 5 } })).toThrow(/perRound/);
  });
});
