import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { ProcessGroup, agentArgs, coordinatorArgs, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e5-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

const AGENTS = 5;
const ROUNDS = 5;
const SAMPLES_PER_ROUND = 600;
/** MNIST MLP parameters (784-256-128-10). */
const PARAMS = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10;

describe.runIf(e2eEnabled)('end to end: a coordinator and 5 agent processes on loopback', () => {
  it('5 FedAvg rounds on label-skewed MNIST shards: global test accuracy rises every round', async () => {
    const port = await freePort();
    const db = path.join(dir, 'coordinator.db');
    const coordinator = group.start('coordinator', coordinatorArgs({ port, db, out: path.join(dir, 'coordinator'), rounds: ROUNDS, perRound: AGENTS, deadlineSeconds: 60 }));
    const agents = Array.from({ length: AGENTS }, (_, i) => group.start(`agent-${i}`, agentArgs({
      port, id: `dev-${i}`, shard: `${i}/${AGENTS}`, db: path.join(dir, `dev-${i}.sqlite`), out: path.join(dir, `dev-${i}`), samplesPerRound: SAMPLES_PER_ROUND,
    })));
    const { code } = await coordinator.exited;
    expect(code).toBe(0);

    // Every agent learned every round, with device time and joules from its profile.
    for (const a of agents) {
      const trained = a.logs('agent.round-trained');
      expect(trained.map((l) => l.roundId)).toEqual([1, 2, 3, 4, 5]);
      for (const l of trained) {
        expect(l).toMatchObject({ numSamples: SAMPLES_PER_ROUND, method: 'er' });
        for (const k of ['deviceSeconds', 'hostSeconds', 'joules', 'replaySamples']) expect(l[k] as number).toBeGreaterThan(0);
        expect(l['accuracy'] as number).toBeGreaterThan(0.1);
      }
      // The shard is non-IID: its two owned classes hold most of its samples.
      const ready = a.logs('agent.data-ready')[0]!;
      const counts = ready['classCounts'] as number[];
      const owned = (ready['dominantClasses'] as number[]).reduce((s, c) => s + counts[c]!, 0);
      expect(owned / counts.reduce((s, n) => s + n, 0)).toBeGreaterThan(0.7);
    }
    const exits = await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    for (const e of exits) expect(e.code).toBe(0);
    for (let i = 0; i < AGENTS; i++) {
      const report = JSON.parse(readFileSync(path.join(dir, `dev-${i}`, 'report.json'), 'utf8')) as {
        rounds: unknown[]; acks: { accepted: number }; memory: { storedSamples: number; emSize: number; swap: { applied: number } };
      };
      expect(report.rounds).toHaveLength(ROUNDS);
      expect(report.acks.accepted).toBe(ROUNDS);
      // The memory hierarchy ran: every streamed sample is in the device's own SQLite store, the EM is full, swaps happened.
      expect(report.memory.storedSamples).toBe(ROUNDS * SAMPLES_PER_ROUND);
      expect(report.memory.emSize).toBe(500);
      expect(report.memory.swap.applied).toBeGreaterThan(0);
      expect(existsSync(path.join(dir, `dev-${i}.sqlite`))).toBe(true);
    }

    const store = CoordinatorStore.open(db);
    try {
      expect(store.rounds().map((r) => [r.roundId, r.status])).toEqual([[1, 'completed'], [2, 'completed'], [3, 'completed'], [4, 'completed'], [5, 'completed']]);
      // Only model-sized deltas came from the devices: raw samples never left them.
      const log = store.updateLog();
      expect(log).toHaveLength(AGENTS * ROUNDS);
      for (const u of log) expect(u).toMatchObject({ bytes: PARAMS * 4, numSamples: SAMPLES_PER_ROUND, status: 'applied' });
      const acc = Array.from({ length: ROUNDS }, (_, k) => store.model(k + 1)!.accuracy!);
      // Strictly increasing: repeated runs move these by ~0.002 (async swaps reorder replay), the smallest rise is ~0.008.
      for (let k = 1; k < ROUNDS; k++) expect(acc[k]!, `round ${k + 1} vs ${k}: ${acc.join(', ')}`).toBeGreaterThan(acc[k - 1]!);
      expect(acc[0]!).toBeGreaterThan(0.2);
      expect(acc[ROUNDS - 1]!).toBeGreaterThan(0.7);
      for (let v = 1; v <= ROUNDS; v++) expect(store.model(v)!.applied).toBe(AGENTS);
    } finally {
      store.close();
    }
  });
});
