import { describe, expect, it } from 'vitest';
import { detectEnforcer, removeCgroupTree } from '../../simulation/budget.js';
import { simulate, smallConfig, tmpDir } from './helpers.js';

/** One raspberry-pi-4 client (budget 0.25 of a core) training ~1 CPU-second; the share it measured. */
async function measuredShare(budget: 'cgroup' | 'duty'): Promise<{ share: number; enforcer: string }> {
  const cfg = smallConfig({ clients: 1, perRound: 1, rounds: 1, budget, profiles: 'raspberry-pi-4', workers: 1, slotsPerWorker: 1 });
  const r = await simulate(cfg, tmpDir());
  const p = r.profiles[0]!;
  expect(p.budget).toBe(0.25);
  return { share: p.measuredShare!, enforcer: Object.keys(r.jobEnforcers).join(',') };
}

const probe = (() => {
  try {
    const info = detectEnforcer('cgroup', `strata-test-probe-${process.pid}`);
    if (info.root !== null) removeCgroupTree(info.root);
    return { ok: true, why: '' };
  } catch (err) {
    return { ok: false, why: (err as Error).message };
  }
})();

/**
 * A quota is a ceiling: no load can push a client above it, so every attempt must stay under
 * budget + tolerance. Other processes on a saturated 2-core machine (the rest of the suite runs
 * in parallel) can only push it below, so the lower bound is taken from the best of 3 attempts.
 */
async function withinBudget(budget: 'cgroup' | 'duty', tolerance: number): Promise<{ share: number; enforcer: string; attempts: number[] }> {
  const attempts: number[] = [];
  let last = { share: 0, enforcer: '' };
  for (let i = 0; i < 3; i++) {
    last = await measuredShare(budget);
    attempts.push(last.share);
    expect(last.share).toBeLessThanOrEqual(0.25 * (1 + tolerance));
    if (Math.abs(last.share - 0.25) / 0.25 <= tolerance) break;
  }
  const best = attempts.reduce((a, b) => (Math.abs(b - 0.25) < Math.abs(a - 0.25) ? b : a));
  return { share: best, enforcer: last.enforcer, attempts };
}

describe('budgets are enforced for real', () => {
  it.skipIf(!probe.ok)(`cgroup quota: a 0.25 budget measures 0.25 +/- 10%${probe.ok ? '' : ` (skipped: ${probe.why})`}`, async () => {
    const m = await withinBudget('cgroup', 0.1);
    expect(m.enforcer).toMatch(/^cgroup-v[12]$/);
    expect(Math.abs(m.share - 0.25) / 0.25, `shares measured: ${m.attempts.join(', ')}`).toBeLessThanOrEqual(0.1);
  });

  it('duty-cycle throttle: a 0.25 budget measures 0.25 +/- 20%', async () => {
    const m = await withinBudget('duty', 0.2);
    expect(m.enforcer).toBe('duty');
    expect(Math.abs(m.share - 0.25) / 0.25, `shares measured: ${m.attempts.join(', ')}`).toBeLessThanOrEqual(0.2);
  });
});
