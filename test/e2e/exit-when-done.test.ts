import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessGroup, agentArgs, coordinatorArgs, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-bye-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('the end of a federation with real processes', () => {
  it('the coordinator says bye at --rounds; agents log it and, with --exit-when-done, exit 0 by themselves', async () => {
    const port = await freePort();
    const coordinator = group.start('coordinator', coordinatorArgs({ port, db: path.join(dir, 'c.db'), out: path.join(dir, 'coordinator'), rounds: 2, perRound: 2, deadlineSeconds: 60 }));
    const agents = [0, 1].map((i) => group.start(`agent-${i}`, agentArgs({
      port, id: `bye-${i}`, shard: `${i}/2`, db: path.join(dir, `bye-${i}.sqlite`), out: path.join(dir, `bye-${i}`), samplesPerRound: 100, extra: ['--exit-when-done'],
    })));
    expect((await coordinator.exited).code).toBe(0);
    expect(coordinator.logs('coordinator.said-bye')[0]).toMatchObject({ agents: 2 });
    // No signal: they leave on their own once told.
    const exits = await Promise.race([
      Promise.all(agents.map((a) => a.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('agents did not exit after the bye')), 30_000)),
    ]);
    for (const e of exits) expect(e).toEqual({ code: 0, signal: null });
    for (const [i, a] of agents.entries()) {
      expect(a.logs('agent.bye-received')[0]).toMatchObject({ final: true, roundsCompleted: 2 });
      expect(a.logs('agent.round-trained').map((l) => l.roundId)).toEqual([1, 2]);
      expect(a.stdout).toContain(`agent bye-${i} stopped after 2 rounds`);
      expect(existsSync(path.join(dir, `bye-${i}`, 'report.json'))).toBe(true);
    }
  }, 120_000);
});
