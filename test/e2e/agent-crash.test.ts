import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { ProcessGroup, agentArgs, coordinatorArgs, e2eSlowEnabled, freePort, type LogLine } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-crash-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

const ROUNDS = 4;
/** Two quick devices and one slow one (many more samples per round), so a round is half done for seconds. */
const DEVICES = [
  { id: 'quick-0', shard: '0/3', samples: 300 },
  { id: 'quick-1', shard: '1/3', samples: 300 },
  { id: 'slow-2', shard: '2/3', samples: 4000 },
];

describe.runIf(e2eSlowEnabled)('crash recovery with real agent processes', () => {
  it('kill -9 the coordinator mid-round; restarted on the same db, it resumes; agents reconnect by themselves; no accepted update lost or applied twice', async () => {
    writeFileSync(path.join(dir, 'tokens'), DEVICES.map((d) => `${d.id} t-${d.id}`).join('\n'));
    const port = await freePort();
    const db = path.join(dir, 'coordinator.db');
    const coordArgs = coordinatorArgs({
      port, db, out: path.join(dir, 'coordinator'), rounds: ROUNDS, perRound: DEVICES.length, deadlineSeconds: 60,
      extra: ['--tokens', path.join(dir, 'tokens')],
    });
    const first = group.start('coordinator-1', coordArgs, 'debug');
    const agents = DEVICES.map((d) => group.start(d.id, agentArgs({
      port, id: d.id, shard: d.shard, db: path.join(dir, `${d.id}.sqlite`), out: path.join(dir, d.id), samplesPerRound: d.samples,
    })));
    // Mid-round 2: both quick updates accepted (durable, acked), the slow device still training.
    await first.waitLog((l) => l.event === 'coordinator.update-accepted' && l.roundId === 2 && l.accepted === 2, 90_000, 'round 2 half done');
    expect(agents[2]!.logs('agent.round-trained').some((l) => l.roundId === 2)).toBe(false);
    expect((await first.kill('SIGKILL')).signal).toBe('SIGKILL');

    const second = group.start('coordinator-2', coordArgs, 'debug');
    const resumed = await second.waitLog((l) => l.event === 'coordinator.round-resumed', 30_000, 'resume');
    expect(resumed).toMatchObject({ roundId: 2, replayed: 2, modelVersion: 1 });
    expect((await second.exited).code).toBe(0);
    // Every agent came back on its own (same processes, never restarted) and finished every round.
    for (const a of agents) {
      expect(a.running).toBe(true);
      expect(a.logs('agent.reconnecting').length).toBeGreaterThan(0);
    }
    const exits = await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    for (const e of exits) expect(e.code).toBe(0);

    const store = CoordinatorStore.open(db);
    try {
      const rounds = store.rounds();
      expect(rounds.map((r) => [r.roundId, r.status, r.baseVersion])).toEqual([[1, 'completed', 0], [2, 'completed', 1], [3, 'completed', 2], [4, 'completed', 3]]);
      expect(rounds[1]!.resumed).toBe(1);
      const log = store.updateLog();
      // Each device exactly once per round, every row applied in the version its round produced.
      expect(log).toHaveLength(ROUNDS * DEVICES.length);
      expect(new Set(log.map((u) => `${u.assignedRound}/${u.agentId}`)).size).toBe(ROUNDS * DEVICES.length);
      for (const u of log) expect(u).toMatchObject({ status: 'applied', appliedVersion: u.roundId, roundId: u.assignedRound });
      for (let v = 1; v <= ROUNDS; v++) expect(store.model(v)!.applied).toBe(DEVICES.length);
      // Every acceptance an agent was told about is in the log, with the sample count that device trained on.
      DEVICES.forEach((d, i) => {
        const acks = agents[i]!.logs('agent.update-acknowledged') as (LogLine & { accepted: boolean })[];
        for (const ack of acks) {
          expect(ack.accepted).toBe(true);
          expect(log.filter((u) => u.agentId === d.id && u.assignedRound === ack.roundId)).toMatchObject([{ numSamples: d.samples }]);
        }
        expect(new Set(acks.map((a) => a.roundId)).size).toBe(acks.length);
      });
      // Each device trained each round once: the quick ones' round-2 updates were durable before the crash and not asked
      // for again; the slow one's, trained across the crash, was sent once the coordinator was back, not retrained.
      for (const a of agents) expect(a.logs('agent.round-trained').map((l) => l.roundId)).toEqual([1, 2, 3, 4]);
      expect(store.model(ROUNDS)!.accuracy).toBeGreaterThan(0.3);
    } finally {
      store.close();
    }
  });
});
