import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { UPLOAD_GRANT_FEATURE, encodeWeightFrame, type RoundAssignmentMessage } from '../../protocol/index.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import type { AcceptedUpdateRecord } from '../../storage-tier/coordinator-rows.js';
import { tempDir } from '../storage-tier/helpers.js';
import { RawClient, startCoordinator, type Harness } from './helpers.js';

const tmp = tempDir('strata-group-commit-test-');
afterAll(() => tmp.remove());
let harness: Harness | undefined;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await harness?.stop();
  harness = undefined;
});

const N = 1000;
const LAYOUT = '0123456789abcdef';

function record(agentId: string): AcceptedUpdateRecord {
  return { roundId: 1, assignedRound: 1, agentId, modelVersion: 0, numSamples: 10, weight: 10, scale: 1, norm: 1, bytes: 4 * N, receivedAt: Date.now() };
}

function deltaFrame(roundId: number, modelVersion: number, layoutHash: string, value: number): Buffer {
  return encodeWeightFrame({ kind: 'delta', roundId, modelVersion, layoutHash, numSamples: 10 }, new Float32Array(N).fill(value));
}

/** What another connection to the file sees committed: the update rows' agents and the round's count. */
function committed(file: string): { agents: string[]; accepted: number } {
  const db = new Database(file, { readonly: true });
  try {
    const agents = (db.prepare('SELECT agent_id FROM updates ORDER BY seq').pluck().all() as string[]);
    const accepted = Number(db.prepare('SELECT accepted FROM rounds WHERE round_id = 1').pluck().get() ?? 0);
    return { agents, accepted };
  } finally {
    db.close();
  }
}

describe('group commit of accepted updates', () => {
  it('queues rows until commitAccepted, commits them in one go, then calls each onDurable in order; any other store call commits first', () => {
    const file = tmp.file('store.db');
    const store = CoordinatorStore.open(file);
    store.saveInitialModel(new Float32Array(N), LAYOUT, Date.now());
    store.openRound(1, 0, Date.now());
    const durable: string[] = [];
    for (const id of ['a', 'b', 'c']) store.acceptUpdate(record(id), deltaFrame(1, 0, LAYOUT, 1), undefined, () => durable.push(id));
    expect(store.uncommitted).toBe(3);
    expect(durable).toEqual([]);
    expect(committed(file)).toEqual({ agents: [], accepted: 0 });
    expect(store.commitAccepted()).toBe(3);
    expect(durable).toEqual(['a', 'b', 'c']);
    expect(committed(file)).toEqual({ agents: ['a', 'b', 'c'], accepted: 3 });
    expect(store.commitAccepted()).toBe(0);

    // Another write commits the queue before its own: the database never sees them out of order.
    store.acceptUpdate(record('d'), deltaFrame(1, 0, LAYOUT, 1), undefined, () => durable.push('d'));
    store.bumpRound(1, 'rejected');
    expect(durable).toEqual(['a', 'b', 'c', 'd']);
    expect(committed(file)).toEqual({ agents: ['a', 'b', 'c', 'd'], accepted: 4 });
    // So does closing.
    store.acceptUpdate(record('e'), deltaFrame(1, 0, LAYOUT, 1), undefined, () => durable.push('e'));
    store.close();
    expect(durable).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(committed(file).agents).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('an agent is acked only once its update is committed: the row is there when the ack arrives', async () => {
    const file = tmp.file('coordinator.db');
    harness = await startCoordinator({ perRound: 4, overCommit: 1, rounds: 1, roundDeadlineMs: 20_000 }, N, undefined, file);
    const peers = await Promise.all(['p0', 'p1', 'p2', 'p3'].map(async (id) => {
      const c = new RawClient(harness!.url);
      raws.push(c);
      await c.hello(id, 'x', { features: [UPLOAD_GRANT_FEATURE] });
      await c.until(() => c.messages.some((m) => m.type === 'round-assignment') && c.binaries.length > 0);
      return { id, c, a: c.messages.find((m) => m.type === 'round-assignment') as RoundAssignmentMessage };
    }));
    const seenAtAck = new Map<string, string[]>();
    for (const { id, c, a } of peers) {
      c.ws.on('message', (data, isBinary) => {
        // Read the database the moment the ack arrives, before anything else runs on this side.
        if (!isBinary && String(data).includes('"update-ack"')) seenAtAck.set(id, committed(file).agents);
      });
      c.send({
        type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: { numSamples: 10, loss: 1, accuracy: 0.1, deviceSeconds: 1, hostSeconds: 1 },
        joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model',
      });
    }
    // Three updates inside one commit window, then (with the round still open) the fourth on its own.
    for (const { c, a } of peers.slice(0, 3)) {
      await c.until(() => c.messages.some((m) => m.type === 'upload-grant'));
      c.ws.send(deltaFrame(a.roundId, a.modelVersion, a.layoutHash, 0.5));
    }
    for (const { c } of peers.slice(0, 3)) await c.until(() => c.messages.some((m) => m.type === 'update-ack'));
    for (const { id } of peers.slice(0, 3)) expect(seenAtAck.get(id)).toContain(id);
    expect(committed(file).accepted).toBe(3);
    const last = peers[3]!;
    await last.c.until(() => last.c.messages.some((m) => m.type === 'upload-grant'));
    last.c.ws.send(deltaFrame(last.a.roundId, last.a.modelVersion, last.a.layoutHash, 0.5));
    await last.c.until(() => last.c.messages.some((m) => m.type === 'update-ack'));
    expect(seenAtAck.get('p3')).toContain('p3');
    for (const { c } of peers) expect(c.messages.find((m) => m.type === 'update-ack')).toMatchObject({ accepted: true });
    await harness.coordinator.finished;
    expect(harness.store.updateLog().map((u) => u.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
  });
});
