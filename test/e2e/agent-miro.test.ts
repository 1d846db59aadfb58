import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessGroup, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-miro-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

interface CoordinatorReport {
  status: { clients: { clientId: string; profile: string; config: { memory: number; streamBuffer: number; swapRatio: number } | null; task: number | null; profilingJoules: number; joules: number }[] };
  miro: { boundaries: { clientId: string; profile: string; roundId: number; task: number; chosen: string; profilingJoules: number; candidates: { key: string; accuracy: number; joules: number; chosen: boolean }[] }[] };
}

describe.runIf(e2eEnabled)('strata agent --profiler miro against a coordinator', () => {
  it('each agent profiles at its stream\'s task boundaries; the coordinator\'s report and /status show its choices and joules', async () => {
    const port = await freePort();
    const profiles = ['jetson-nano-5w', 'phone-lowend'];
    const coordinator = group.start('coordinator', [
      'coordinator', '--port', String(port), '--db', path.join(dir, 'coordinator.db'), '--out', path.join(dir, 'coordinator'), '--dataset', 'synthetic',
      '--model', 'mlp', '--rounds', '4', '--per-round', '2', '--over-commit', '1', '--deadline', '600', '--heartbeat', '5000', '--method', 'er', '--batch', '16',
    ]);
    const agents = profiles.map((profile, i) => group.start(`agent-${i}`, [
      'agent', '--url', `ws://127.0.0.1:${port}`, '--agent-id', `dev-${i}`, '--token', 't', '--profile', profile, '--shard', `${i}/2`, '--partition', 'iid',
      '--dataset', 'split-synthetic', '--tasks', '2', '--rounds-per-task', '2', '--memory', '50', '--db', path.join(dir, `dev-${i}.sqlite`),
      '--out', path.join(dir, `dev-${i}`), '--reconnect-max', '1', '--profiler', 'miro', '--miro-memories', '25,50', '--miro-stream-buffers', '0.5,1',
      '--miro-swap-ratios', '0.5', '--navigator', 'grid', '--profiling-budget', '1', '--min-trial-steps', '5',
    ]));
    expect((await coordinator.exited).code).toBe(0);
    for (const a of agents) expect((await a.kill('SIGTERM')).code).toBe(0);

    const report = JSON.parse(readFileSync(path.join(dir, 'coordinator', 'report.json'), 'utf8')) as CoordinatorReport;
    // Both tasks' first rounds (1 and 3), both devices.
    expect(report.miro.boundaries.map((b) => `${b.clientId}/${b.task}/${b.roundId}`).sort()).toEqual(['dev-0/0/1', 'dev-0/1/3', 'dev-1/0/1', 'dev-1/1/3']);
    for (const b of report.miro.boundaries) {
      expect(b.profile).toBe(profiles[Number(b.clientId.slice(4))]);
      expect(b.profilingJoules).toBeGreaterThan(0);
      expect(b.candidates.some((c) => c.chosen && c.key === b.chosen)).toBe(true);
      for (const c of b.candidates) expect(c.joules).toBeGreaterThan(0);
    }
    for (const c of report.status.clients) {
      expect(c.config).not.toBeNull();
      expect(c.task).toBe(1);
      expect(c.profilingJoules).toBeGreaterThan(0);
      expect(c.joules).toBeGreaterThan(c.profilingJoules);
    }
    // The agent's own report agrees with what the coordinator was told.
    const agent = JSON.parse(readFileSync(path.join(dir, 'dev-0', 'report.json'), 'utf8')) as { totals: { profilingJoules: number; joules: number } };
    const row = report.status.clients.find((c) => c.clientId === 'dev-0')!;
    expect(agent.totals.profilingJoules).toBeCloseTo(row.profilingJoules, 6);
    expect(agent.totals.joules).toBeCloseTo(row.joules, 6);
  });
});
