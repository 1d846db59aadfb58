import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { ProcessGroup, agentArgs, coordinatorArgs, e2eSlowEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-dropout-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

const DEADLINE_SECONDS = 8;

describe.runIf(e2eSlowEnabled)('dropout with real agent processes', () => {
  it('kill -9 an agent mid-round: the round completes at its deadline with the others', async () => {
    const port = await freePort();
    const db = path.join(dir, 'coordinator.db');
    // K = 3, min completion 0.5: two of three updates close the round at its deadline.
    const coordinator = group.start('coordinator', coordinatorArgs({
      port, db, out: path.join(dir, 'coordinator'), rounds: 1, perRound: 3, deadlineSeconds: DEADLINE_SECONDS, extra: ['--min-completion', '0.5'],
    }), 'debug');
    const spec = [
      { id: 'stays-0', shard: '0/3', samples: 300 },
      { id: 'stays-1', shard: '1/3', samples: 300 },
      { id: 'victim-2', shard: '2/3', samples: 6000 },
    ];
    const agents = spec.map((d) => group.start(d.id, agentArgs({
      port, id: d.id, shard: d.shard, db: path.join(dir, `${d.id}.sqlite`), out: path.join(dir, d.id), samplesPerRound: d.samples,
    })));
    const victim = agents[2]!;
    await victim.waitLog((l) => l.event === 'agent.assignment-received' && l.roundId === 1, 60_000, 'victim assigned');
    expect((await victim.kill('SIGKILL')).signal).toBe('SIGKILL');
    expect(victim.logs('agent.round-trained')).toHaveLength(0);

    expect((await coordinator.exited).code).toBe(0);
    const dropped = coordinator.lines.find((l) => l.event === 'coordinator.agent-dropped');
    expect(dropped).toMatchObject({ roundId: 1 });
    // Never extended: the two updates meet the minimum completion.
    expect(coordinator.logs('coordinator.deadline-extended')).toHaveLength(0);
    for (const a of agents.slice(0, 2)) expect((await a.kill('SIGTERM')).code).toBe(0);

    const store = CoordinatorStore.open(db);
    try {
      const [round] = store.rounds();
      expect(round).toMatchObject({ roundId: 1, status: 'completed', accepted: 2, dropped: 1, newVersion: 1 });
      // It waited for the dropped device until its deadline, then closed with the others' updates.
      expect(round!.closedAt! - round!.startedAt).toBeGreaterThanOrEqual(DEADLINE_SECONDS * 1000 - 50);
      expect(store.model(1)!.applied).toBe(2);
      expect(store.updateLog().map((u) => u.agentId).sort()).toEqual(['stays-0', 'stays-1']);
    } finally {
      store.close();
    }
  });

  it('kill -9 a selected agent mid-round while another waits idle: the idle one replaces it and the round completes with both updates', async () => {
    const port = await freePort();
    const db = path.join(dir, 'replacement.db');
    const deadlineSeconds = 120;
    // K = 2 of exactly the first two agents; the spare connects once round 1 is under way. 20 local
    // epochs keep the victim (6,000 samples a round) training for seconds, long past the spare's start.
    const coordinator = group.start('coordinator-r', coordinatorArgs({
      port, db, out: path.join(dir, 'coordinator-r'), rounds: 1, perRound: 2, deadlineSeconds, extra: ['--min-clients', '2', '--epochs', '20'],
    }), 'debug');
    const start = (id: string, shard: string, samples: number) => group.start(id, agentArgs({
      port, id, shard, db: path.join(dir, `${id}.sqlite`), out: path.join(dir, id), samplesPerRound: samples,
    }));
    const stays = start('r-stays', '0/3', 300);
    const victim = start('r-victim', '1/3', 6000);
    await victim.waitLog((l) => l.event === 'agent.assignment-received' && l.roundId === 1, 60_000, 'victim assigned');
    const spare = start('r-spare', '2/3', 300);
    await coordinator.waitLog((l) => l.event === 'coordinator.agent-connected' && l.agentId === 'r-spare', 60_000, 'spare connected');
    expect((await victim.kill('SIGKILL')).signal).toBe('SIGKILL');
    expect(victim.logs('agent.round-trained')).toHaveLength(0);

    expect((await coordinator.exited).code).toBe(0);
    expect(coordinator.lines.find((l) => l.event === 'coordinator.replacement-assigned')).toMatchObject({ roundId: 1, replacements: ['r-spare'] });
    for (const a of [stays, spare]) expect((await a.kill('SIGTERM')).code).toBe(0);
    const store = CoordinatorStore.open(db);
    try {
      const [round] = store.rounds();
      expect(round).toMatchObject({ roundId: 1, status: 'completed', accepted: 2, dropped: 1, newVersion: 1 });
      expect(store.updateLog().map((u) => u.agentId).sort()).toEqual(['r-spare', 'r-stays']);
    } finally {
      store.close();
    }
  });
});
