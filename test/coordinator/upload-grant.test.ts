import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import { UPLOAD_GRANT_FEATURE, encodeWeightFrame, type RoundAssignmentMessage, type WelcomeMessage } from '../../protocol/index.js';
import { RawClient, deterministicAgent, startCoordinator, waitFor, type Harness } from './helpers.js';

const N = 500;
let harness: Harness | undefined;
let raws: RawClient[] = [];
let agents: AgentConnection[] = [];

afterEach(async () => {
  for (const r of raws) r.close();
  raws = [];
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
  await harness?.stop();
  harness = undefined;
});

/** Raw agents offering upload grants, each holding its round-1 assignment and model. */
async function grantAgents(count: number): Promise<Array<{ c: RawClient; a: RoundAssignmentMessage }>> {
  const out = [];
  for (let i = 0; i < count; i++) {
    const c = new RawClient(harness!.url);
    raws.push(c);
    await c.hello(`g${i}`, 'x', { features: [UPLOAD_GRANT_FEATURE, 'some-future-feature'] });
    out.push(c);
  }
  return Promise.all(out.map(async (c) => {
    await c.until(() => c.messages.some((m) => m.type === 'round-assignment') && c.binaries.length > 0);
    return { c, a: c.messages.find((m) => m.type === 'round-assignment') as RoundAssignmentMessage };
  }));
}

function result(a: RoundAssignmentMessage) {
  return { type: 'result' as const, roundId: a.roundId, modelVersion: a.modelVersion, metrics: { numSamples: 10, loss: 1, accuracy: 0.1, deviceSeconds: 1, hostSeconds: 1 },
    joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model' as const };
}

function frame(a: RoundAssignmentMessage, value: number): Buffer {
  return encodeWeightFrame({ kind: 'delta', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: 10 }, new Float32Array(N).fill(value));
}

const grants = (c: RawClient): number => c.messages.filter((m) => m.type === 'upload-grant').length;
const acked = (c: RawClient): boolean => c.messages.some((m) => m.type === 'update-ack');

/** Answer grants as they come (whatever the order), checking at most `slots` are granted and unanswered; returns who uploaded. */
async function serveGrants(peers: Array<{ c: RawClient; a: RoundAssignmentMessage }>, slots: number, value: (i: number) => number, count = peers.length): Promise<Set<number>> {
  const sent = new Set<number>();
  while (sent.size < count) {
    await waitFor(() => peers.some((p, i) => !sent.has(i) && grants(p.c) > 0), 5000, 'a grant');
    expect(peers.filter((p) => grants(p.c) > 0 && !acked(p.c)).length).toBeLessThanOrEqual(slots);
    const i = peers.findIndex((p, j) => !sent.has(j) && grants(p.c) > 0);
    const { c, a } = peers[i]!;
    c.ws.send(frame(a, value(i)));
    sent.add(i);
    await c.until(() => acked(c));
  }
  return sent;
}

describe('pull-based uploads (feature upload-grant)', () => {
  it('grants at most maxConcurrentUploads uploads at a time, in result order, and every update lands', async () => {
    harness = await startCoordinator({ perRound: 6, overCommit: 1, rounds: 1, maxConcurrentUploads: 2, roundDeadlineMs: 20_000 }, N);
    const peers = await grantAgents(6);
    for (const { c } of peers) {
      const welcome = c.messages.find((m) => m.type === 'welcome') as WelcomeMessage;
      expect(welcome.features).toEqual([UPLOAD_GRANT_FEATURE]);
    }
    for (const { c, a } of peers) c.send(result(a));
    await waitFor(() => peers.filter((p) => grants(p.c) > 0).length === 2, 5000, 'two grants');
    // Nothing is asked of the others: their frames stay with them.
    await new Promise((r) => setTimeout(r, 100));
    expect(peers.filter((p) => grants(p.c) > 0)).toHaveLength(2);
    // Each upload frees its slot for the next agent in line; never more than 2 granted and unanswered.
    await serveGrants(peers, 2, (i) => 0.01 * (i + 1));
    for (const { c, a } of peers) {
      expect(c.messages.filter((m) => m.type === 'upload-grant')).toEqual([{ type: 'upload-grant', roundId: a.roundId }]);
      expect(c.messages.find((m) => m.type === 'update-ack')).toMatchObject({ accepted: true });
    }
    await harness.coordinator.finished;
    expect(harness.store.updateLog()).toHaveLength(6);
    const shift = (0.01 * (1 + 2 + 3 + 4 + 5 + 6)) / 6;
    expect(harness.store.latestModel()!.weights[7]).toBeCloseTo(shift, 6);
  });

  it('when the round closes, agents still waiting for a grant are told their update is not needed, without blame', async () => {
    harness = await startCoordinator({ perRound: 2, overCommit: 2, rounds: 2, maxConcurrentUploads: 1, roundDeadlineMs: 20_000 }, N);
    const peers = await grantAgents(4);
    for (const { c, a } of peers) c.send(result(a));
    const served = await serveGrants(peers, 1, () => 0.5, 2);
    for (const { c, a } of peers.filter((_, i) => !served.has(i))) {
      await c.until(() => c.messages.some((m) => m.type === 'update-ack'));
      expect(c.messages.find((m) => m.type === 'update-ack')).toEqual({ type: 'update-ack', roundId: a.roundId, accepted: false, code: 'STRATA_ERR_STALE_ROUND' });
      expect(grants(c)).toBe(0);
      expect(c.errorCodes()).toEqual([]);
      expect(c.closed).toBeUndefined();
    }
    expect(harness.store.rounds()[0]).toMatchObject({ roundId: 1, status: 'completed', rejected: 0 });
  });

  it('AgentConnection agents with and without the feature train together', async () => {
    harness = await startCoordinator({ perRound: 4, overCommit: 1, rounds: 3, maxConcurrentUploads: 1, roundDeadlineMs: 20_000 }, N);
    agents = [0, 1, 2, 3].map((i) => deterministicAgent(harness!.url, `m${i}`, { samples: 10, value: () => 0.001 * (i + 1), uploadGrants: i % 2 === 0 }));
    await harness.coordinator.finished;
    await waitFor(() => agents.every((a) => a.acks.length === 3), 5000, 'acks');
    for (const a of agents) expect(a.acks.every((k) => k.accepted)).toBe(true);
    expect(harness.store.updateLog()).toHaveLength(12);
    expect(harness.store.latestModel()!.weights[3]).toBeCloseTo(3 * 0.0025, 6);
  });
});
