import { describe, expect, it } from 'vitest';
import { detectEnforcer, removeCgroupTree } from '../../coordinator/simulation/budget.js';
import { runSimulation } from '../../coordinator/simulation/simulation-host.js';
import { silentLogger, smallConfig, tmpDir } from './helpers.js';

/** One raspberry-pi-4 client (budget 0.25 of a core) training ~1 CPU-second; the share it measured. */
async function measuredShare(budget: 'cgroup' | 'duty'): Promise<{ share: number; enforcer: string }> {
  const cfg = smallConfig({ clients: 1, perRound: 1, rounds: 1, budget, profiles: 'raspberry-pi-4', workers: 1, slotsPerWorker: 1 });
  const r = await runSimulation(cfg, tmpDir(), silentLogger);
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

describe('budgets are enforced for real', () => {
  it.skipIf(!probe.ok)(`cgroup quota: a 0.25 budget measures 0.25 +/- 10%${probe.ok ? '' : ` (skipped: ${probe.why})`}`, async () => {
    const m = await measuredShare('cgroup');
    expect(m.enforcer).toMatch(/^cgroup-v[12]$/);
    expect(Math.abs(m.share - 0.25) / 0.25).toBeLessThanOrEqual(0.1);
  });

  it('duty-cycle throttle: a 0.25 budget measures 0.25 +/- 20%', async () => {
    const m = await measuredShare('duty');
    expect(m.enforcer).toBe('duty');
    expect(Math.abs(m.share - 0.25) / 0.25).toBeLessThanOrEqual(0.2);
  });
});
