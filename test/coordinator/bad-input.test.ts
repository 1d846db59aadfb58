import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import { PROTOCOL_VERSION, encodeWeightFrame, type RoundAssignmentMessage } from '../../protocol/index.js';
import { RawClient, deterministicAgent, startCoordinator, waitFor, type Harness } from './helpers.js';

const N = 1000;
const tokens = new Map([['good', 't-good'], ...Array.from({ length: 12 }, (_, i) => [`bad${i}`, `t-bad${i}`] as [string, string])]);
let harness: Harness;
let good: AgentConnection;
const raws: RawClient[] = [];

beforeAll(async () => {
  harness = await startCoordinator({
    tokens, perRound: 1, minClients: 1, overCommit: 10, roundDeadlineMs: 30_000, maxUpdateNorm: 1e6,
    limits: { maxParams: N, maxTextBytes: 1024, handshakeTimeoutMs: 2000 },
  }, N);
  // The good agent's delay keeps each round open long enough for a raw client to answer its assignment on a loaded machine
  // (else the good update closes the round first and the raw client's bad update is merely STALE_ROUND).
  good = deterministicAgent(harness.url, 'good', { samples: 5, value: () => 0.001, delayMs: 250 });
  await waitFor(() => good.acks.length >= 1, 5000, 'the good agent\'s first round');
});

afterAll(async () => {
  for (const r of raws) r.close();
  await good.stop();
  await harness.stop();
});

/** The well-behaved agent keeps completing rounds. */
async function goodStillServed(): Promise<void> {
  const before = good.acks.length;
  await waitFor(() => good.acks.length > before, 5000, 'the good agent to be served');
  expect(good.acks.every((a) => a.accepted)).toBe(true);
}

function raw(): RawClient {
  const c = new RawClient(harness.url);
  raws.push(c);
  return c;
}

/** An authenticated raw client holding a fresh assignment and its model frame. */
async function assigned(id: string): Promise<{ c: RawClient; a: RoundAssignmentMessage }> {
  const c = raw();
  await c.hello(id, `t-${id}`);
  await c.until(() => c.messages.some((m) => m.type === 'round-assignment') && c.binaries.length > 0);
  const a = c.messages.findLast((m) => m.type === 'round-assignment') as RoundAssignmentMessage;
  return { c, a };
}

function result(a: RoundAssignmentMessage, roundId = a.roundId) {
  return { type: 'result' as const, roundId, modelVersion: a.modelVersion, metrics: { numSamples: 5, loss: 1, accuracy: 0.1, deviceSeconds: 1, hostSeconds: 1 },
    joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model' as const };
}

function frame(a: RoundAssignmentMessage, values: Float32Array, roundId = a.roundId): Buffer {
  return encodeWeightFrame({ kind: 'delta', roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: 5 }, values);
}

describe('bad input is answered with its code while a good agent keeps being served', () => {
  it('no token -> STRATA_ERR_AUTH, close 4001', async () => {
    const c = raw();
    await c.open();
    c.ws.send(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION, agentId: 'bad0', profile: 'x', capabilities: { models: [], datasets: [], clMethods: [] } }));
    await c.until(() => c.closed !== undefined);
    expect(c.errorCodes()).toEqual(['STRATA_ERR_AUTH']);
    expect(c.closed?.code).toBe(4001);
    await goodStillServed();
  });

  it('wrong token -> STRATA_ERR_AUTH; an unknown agent id too', async () => {
    for (const [id, token] of [['bad0', 'nope'], ['stranger', 't-bad0'], ['good', 't-bad0']] as const) {
      const c = raw();
      await c.hello(id, token);
      await c.until(() => c.closed !== undefined);
      expect(c.errorCodes()).toEqual(['STRATA_ERR_AUTH']);
      expect(c.closed?.code).toBe(4001);
    }
    await goodStillServed();
  });

  it('protocol version mismatch -> STRATA_ERR_PROTOCOL_VERSION, close 4002', async () => {
    const c = raw();
    await c.hello('bad1', 't-bad1', { protocolVersion: 99 });
    await c.until(() => c.closed !== undefined);
    expect(c.errorCodes()).toEqual(['STRATA_ERR_PROTOCOL_VERSION']);
    expect(c.closed?.code).toBe(4002);
    await goodStillServed();
  });

  it('malformed JSON and an unknown type are answered, and the connection stays usable', async () => {
    const c = raw();
    await c.hello('bad2', 't-bad2');
    await c.until(() => c.messages.some((m) => m.type === 'welcome'));
    c.ws.send('{"type": "heartbeat", oops');
    c.ws.send(JSON.stringify({ type: 'teleport', to: 'mars' }));
    c.send({ type: 'heartbeat', sentAt: Date.now() });
    await c.until(() => c.messages.some((m) => m.type === 'heartbeat'));
    expect(c.errorCodes()).toEqual(['STRATA_ERR_MALFORMED_JSON', 'STRATA_ERR_UNKNOWN_TYPE']);
    expect(c.closed).toBeUndefined();
    await goodStillServed();
  });

  it('oversized frames -> STRATA_ERR_FRAME_TOO_LARGE / close 1009', async () => {
    const text = raw();
    await text.hello('bad3', 't-bad3');
    await text.until(() => text.messages.some((m) => m.type === 'welcome'));
    text.ws.send(JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(2000) }));
    await text.until(() => text.closed !== undefined);
    expect(text.errorCodes()).toContain('STRATA_ERR_FRAME_TOO_LARGE');
    expect(text.closed?.code).toBe(1009);
    const bin = raw();
    await bin.hello('bad4', 't-bad4');
    await bin.until(() => bin.messages.some((m) => m.type === 'welcome'));
    bin.ws.send(Buffer.alloc(200_000));
    await bin.until(() => bin.closed !== undefined);
    expect(bin.closed?.code).toBe(1009);
    await goodStillServed();
  });

  it('wrong update length -> STRATA_ERR_BAD_UPDATE_LENGTH', async () => {
    const { c, a } = await assigned('bad5');
    c.send(result(a));
    c.ws.send(frame(a, new Float32Array(N - 1)));
    await c.until(() => c.errorCodes().length > 0);
    expect(c.errorCodes()).toEqual(['STRATA_ERR_BAD_UPDATE_LENGTH']);
    expect(c.messages).toContainEqual(expect.objectContaining({ type: 'update-ack', accepted: false, code: 'STRATA_ERR_BAD_UPDATE_LENGTH' }));
    await goodStillServed();
  });

  it('NaN and Infinity -> STRATA_ERR_NON_FINITE; the update never reaches the model', async () => {
    for (const [id, bad] of [['bad6', Number.NaN], ['bad7', Number.POSITIVE_INFINITY]] as const) {
      const { c, a } = await assigned(id);
      const values = new Float32Array(N).fill(0.5);
      values[123] = bad;
      c.send(result(a));
      c.ws.send(frame(a, values));
      await c.until(() => c.errorCodes().length > 0);
      expect(c.errorCodes()).toEqual(['STRATA_ERR_NON_FINITE']);
    }
    await goodStillServed();
    const w = harness.store.latestModel()!.weights;
    expect(w.every((v) => Number.isFinite(v) && Math.abs(v) < 1)).toBe(true);
  });

  it('a straggler\'s late result is acked STRATA_ERR_STALE_ROUND without blame; a frame for a past round alone is refused with it', async () => {
    const { c, a } = await assigned('bad8');
    // The good agent's update closes the round without bad8, which is still "training".
    await waitFor(() => (harness.coordinator.status().roundId ?? 0) > a.roundId, 5000, 'the next round');
    c.send(result(a));
    await c.until(() => c.messages.some((m) => m.type === 'update-ack'));
    expect(c.messages.find((m) => m.type === 'update-ack')).toEqual({ type: 'update-ack', roundId: a.roundId, accepted: false, code: 'STRATA_ERR_STALE_ROUND' });
    expect(c.errorCodes()).toEqual([]);
    // Free again, it is picked in a later round; a frame for the old round, with no result before it, is refused.
    await c.until(() => c.messages.some((m) => m.type === 'round-assignment' && m.roundId > a.roundId), 5000);
    c.ws.send(frame(a, new Float32Array(N)));
    await c.until(() => c.errorCodes().length >= 1);
    expect(c.errorCodes()).toEqual(['STRATA_ERR_STALE_ROUND']);
    await goodStillServed();
  });

  it('a flood of messages -> STRATA_ERR_RATE_LIMIT, close 4008', async () => {
    const c = raw();
    await c.hello('bad9', 't-bad9');
    await c.until(() => c.messages.some((m) => m.type === 'welcome'));
    for (let i = 0; i < 500; i++) c.send({ type: 'heartbeat' });
    await c.until(() => c.closed !== undefined);
    expect(c.errorCodes()).toContain('STRATA_ERR_RATE_LIMIT');
    expect(c.closed?.code).toBe(4008);
    await goodStillServed();
  });

  it('HTTP: /healthz, /status JSON, /metrics in Prometheus text', async () => {
    const base = harness.coordinator.httpUrl;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ state: 'running', strategy: 'fedavg', numParams: N });
    expect(status['connectedClients']).toBeGreaterThanOrEqual(1);
    expect(status['roundsCompleted']).toBeGreaterThanOrEqual(5);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE strata_rounds_completed_total counter$/m);
    expect(metrics).toMatch(/^strata_updates_rejected_total\{code="STRATA_ERR_NON_FINITE"\} 2$/m);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
