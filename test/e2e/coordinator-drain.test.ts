import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { ProcessGroup, agentArgs, coordinatorArgs, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-drain-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

const ROUNDS = 3;
/**
 * A quick device and a slow one, so round 2 is half done (one update accepted) for seconds: the next round's assignments go
 * out before the coordinator evaluates the new model, so the slow device's lead must outlast that evaluation as well as
 * the drain. It trains for seconds without a heartbeat (the step loop holds its event loop), hence the longer heartbeat.
 * (With 8,000 samples it finished ~1 s after its assignment, 25 ms after the drain ended in a quiet run: under CI load
 * it sometimes beat the drain. 20,000 samples leave over a second.)
 */
const DEVICES = [
  { id: 'quick-0', shard: '0/2', samples: 300 },
  { id: 'slow-1', shard: '1/2', samples: 20000 },
];

describe.runIf(e2eEnabled)('SIGTERM drains the coordinator', () => {
  it('mid-round: exits 0 with its report, the accepted update checkpointed; agents wait it out; a restart finishes the round without losing or repeating that update', async () => {
    const port = await freePort();
    const db = path.join(dir, 'coordinator.db');
    const args = (out: string): string[] => coordinatorArgs({
      port, db, out: path.join(dir, out), rounds: ROUNDS, perRound: DEVICES.length, deadlineSeconds: 60, extra: ['--drain-timeout', '0.5', '--min-completion', '1', '--heartbeat', '5000'],
    });
    const first = group.start('coordinator-1', args('first'), 'debug');
    const agents = DEVICES.map((d) => group.start(d.id, agentArgs({
      port, id: d.id, shard: d.shard, db: path.join(dir, `${d.id}.sqlite`), out: path.join(dir, d.id), samplesPerRound: d.samples,
    })));
    await first.waitLog((l) => l.event === 'coordinator.update-accepted' && l.roundId === 2 && l.accepted === 1, 90_000, 'round 2 half done');

    // The slow device's update cannot arrive within the 0.5 s drain, and the round needs both (--min-completion 1): it stays
    // open, checkpointed in the database, and the daemon stops cleanly.
    const exit = await first.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(first.logs('coordinator.draining')).toHaveLength(1);
    expect(first.logs('coordinator.stopped')).toHaveLength(1);
    const report = JSON.parse(readFileSync(path.join(dir, 'first', 'report.json'), 'utf8')) as { status: { roundsCompleted: number; state: string } };
    expect(report.status).toMatchObject({ roundsCompleted: 1, state: 'stopped' });
    expect(first.stdout).toMatch(/coordinator stopped after 1 rounds/);
    // Agents were told (close code 1001, STRATA_ERR_SHUTTING_DOWN) and keep trying on their own.
    await Promise.all(agents.map((a) => a.waitLog((l) => l.event === 'agent.reconnecting', 10_000, 'reconnect')));
    for (const a of agents) expect(a.running).toBe(true);

    const store = CoordinatorStore.open(db);
    try {
      expect(store.rounds().map((r) => [r.roundId, r.status])).toEqual([[1, 'completed'], [2, 'open']]);
      expect(store.updateLog().filter((u) => u.assignedRound === 2).map((u) => u.agentId)).toEqual(['quick-0']);
    } finally {
      store.close();
    }

    // Restarted on the same database: round 2 resumes from the update log, and every round finishes.
    const second = group.start('coordinator-2', args('second'), 'debug');
    const resumed = await second.waitLog((l) => l.event === 'coordinator.round-resumed', 30_000, 'resume');
    expect(resumed).toMatchObject({ roundId: 2, replayed: 1 });
    expect((await second.exited).code).toBe(0);
    const exits = await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    for (const e of exits) expect(e.code).toBe(0);
    expect(existsSync(path.join(dir, 'second', 'report.json'))).toBe(true);

    const after = CoordinatorStore.open(db);
    try {
      expect(after.rounds().map((r) => [r.roundId, r.status])).toEqual([[1, 'completed'], [2, 'completed'], [3, 'completed']]);
      const log = after.updateLog();
      // Each device exactly once per round, all applied: the checkpointed update was neither lost nor asked for again.
      expect(log).toHaveLength(ROUNDS * DEVICES.length);
      expect(new Set(log.map((u) => `${u.assignedRound}/${u.agentId}`)).size).toBe(ROUNDS * DEVICES.length);
      for (const u of log) expect(u.status).toBe('applied');
      expect(agents[0]!.logs('agent.round-trained').map((l) => l.roundId)).toEqual([1, 2, 3]);
    } finally {
      after.close();
    }
  });
});
