import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessGroup, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-secagg-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

function coordinator(port: number, name: string, extra: string[]): string[] {
  return [
    'coordinator', '--port', String(port), '--db', path.join(dir, `${name}.db`), '--out', path.join(dir, name), '--dataset', 'synthetic', '--model', 'mlp',
    '--rounds', '2', '--per-round', '3', '--over-commit', '1', '--deadline', '60', '--optimizer', 'sgd', '--lr', '0.05', '--method', 'finetune', '--heartbeat', '1000',
    ...extra,
  ];
}

function agent(port: number, id: string, shard: string, extra: string[] = []): string[] {
  return [
    'agent', '--url', `ws://127.0.0.1:${port}`, '--agent-id', id, '--token', `t-${id}`, '--profile', 'raspberry-pi-4', '--dataset', 'synthetic',
    '--shard', shard, '--db', path.join(dir, `${id}.sqlite`), '--out', path.join(dir, id), '--samples-per-round', '100', '--reconnect-max', '1', '--exit-when-done', ...extra,
  ];
}

describe.runIf(e2eEnabled)('end to end: secure aggregation with agent processes', () => {
  it('a coordinator process with --secure-aggregation and distributed DP and three agent processes that require it: 2 rounds, epsilon reported', async () => {
    const port = await freePort();
    const c = group.start('coordinator', coordinator(port, 'secure', ['--secure-aggregation', '--dp', 'central', '--dp-noise-multiplier', '1', '--dp-clip', '1']));
    const agents = ['a', 'b', 'c'].map((id, i) => group.start(`agent-${id}`, agent(port, id, `${i}/3`, ['--require-secagg', '--dp', 'central', '--dp-noise-multiplier', '0.5'])));
    expect((await c.exited).code).toBe(0);
    for (const a of agents) expect((await a.exited).code).toBe(0);
    const completed = c.logs('coordinator.round-completed');
    expect(completed.map((l) => l.roundId)).toEqual([1, 2]);
    const report = JSON.parse(readFileSync(path.join(dir, 'secure', 'report.json'), 'utf8')) as { status: { privacy: { secureAggregation: boolean; dp: { distributed: boolean; rounds: number; epsilon: number } } } };
    expect(report.status.privacy.secureAggregation).toBe(true);
    expect(report.status.privacy.dp).toMatchObject({ distributed: true, rounds: 2 });
    expect(report.status.privacy.dp.epsilon).toBeGreaterThan(0);
  });

  it('an agent process that requires secure aggregation leaves a plain coordinator: STRATA_ERR_PRIVACY_FLOOR, exit non-zero', async () => {
    const port = await freePort();
    group.start('plain', coordinator(port, 'plain', []));
    const a = group.start('agent-floor', agent(port, 'floor', '0/3', ['--require-secagg']));
    const { code } = await a.exited;
    expect(code).not.toBe(0);
    expect(a.lines.some((l) => l.code === 'STRATA_ERR_PRIVACY_FLOOR')).toBe(true);
  });
});
