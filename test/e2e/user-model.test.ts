/**
 * A user's model.json federated by the daemon and agent processes: the
 * coordinator and each agent load their own copy (`--model PATH`) and the
 * layout hash ties them; an agent with another model is refused its rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeIdxDataset } from '../../ml/datasets/dataset-export.js';
import { loadDataset } from '../../ml/datasets/load-dataset.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { saveUserCnn } from '../ml/model-fixtures.js';
import { ProcessGroup, agentArgs, coordinatorArgs, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-byo-'));
const group = new ProcessGroup();
const data = path.join(dir, 'idx');
let modelFile: string;
let otherFile: string;

beforeAll(async () => {
  writeIdxDataset(await loadDataset('mnist'), data, { train: 2000, test: 500 });
  modelFile = await saveUserCnn(path.join(dir, 'user-cnn'), { filters: 4, dense: 16 });
  otherFile = await saveUserCnn(path.join(dir, 'other-cnn'), { filters: 6, dense: 16 });
});

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('a user model.json in a coordinator and agent processes', () => {
  it('agents with --model PATH federate it for 2 rounds; an agent with another model gets STRATA_ERR_LAYOUT_MISMATCH', async () => {
    const port = await freePort();
    const db = path.join(dir, 'coordinator.db');
    const model = ['--model', modelFile, '--dataset', `idx:${data}`];
    // Three agents are offered each round (K = 2, over-commit 1.5); the one with another model refuses, the round closes at 2 updates.
    const coordinator = group.start('coordinator', coordinatorArgs({
      port, db, out: path.join(dir, 'coordinator'), rounds: 2, perRound: 2, deadlineSeconds: 60, extra: [...model, '--min-clients', '3', '--over-commit', '1.5'],
    }));
    const odd = group.start('agent-odd', agentArgs({
      port, id: 'dev-odd', shard: '2/3', db: path.join(dir, 'odd.sqlite'), out: path.join(dir, 'odd'), samplesPerRound: 150,
      extra: ['--model', otherFile, '--dataset', `idx:${data}`],
    }));
    const agents = [0, 1].map((i) => group.start(`agent-${i}`, agentArgs({
      port, id: `dev-${i}`, shard: `${i}/3`, db: path.join(dir, `dev-${i}.sqlite`), out: path.join(dir, `dev-${i}`), samplesPerRound: 150,
      extra: model,
    })));
    const failed = await odd.waitLog((l) => l.event === 'agent.training-failed', 90_000, 'the mismatched agent refusing a round');
    expect(failed['code']).toBe('STRATA_ERR_LAYOUT_MISMATCH');
    // Round 1 closes on the two good updates; the odd agent leaves and a third good one takes its place for round 2.
    await coordinator.waitLog((l) => l.event === 'coordinator.round-completed' && l.roundId === 1, 90_000, 'round 1');
    await odd.kill('SIGTERM');
    agents.push(group.start('agent-2', agentArgs({
      port, id: 'dev-2', shard: '2/3', db: path.join(dir, 'dev-2.sqlite'), out: path.join(dir, 'dev-2'), samplesPerRound: 150, extra: model,
    })));
    const { code } = await coordinator.exited;
    expect(code).toBe(0);
    for (const a of agents.slice(0, 2)) {
      const trained = a.logs('agent.round-trained');
      expect(trained[0]).toMatchObject({ roundId: 1, numSamples: 150 });
    }
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    const store = CoordinatorStore.open(db);
    try {
      expect(store.rounds().map((r) => [r.roundId, r.status])).toEqual([[1, 'completed'], [2, 'completed']]);
      // Each version averaged the two good agents' updates of the user's model (a few steps each: accuracy is not the point here).
      for (const v of [1, 2]) {
        expect(store.model(v)!.applied).toBe(2);
        expect(store.model(v)!.accuracy).toBeGreaterThanOrEqual(0);
      }
    } finally {
      store.close();
    }
  });
});
