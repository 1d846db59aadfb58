/**
 * The device agent in-process against a scripted coordinator socket: what
 * goes over the wire (only weights and metrics), FedProx's mu, the non-IID
 * shard deal. Fast: the synthetic data set.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { DeviceAgent } from '../../client-runtime/agent.js';
import { localShard, parseShardSpec } from '../../client-runtime/local-shard.js';
import { syntheticDataset } from '../../ml/datasets/synthetic.js';
import { initBackend } from '../../ml/backend.js';
import { createModel } from '../../ml/models.js';
import { getFlatWeights, layoutOf } from '../../ml/weights.js';
import { loadProfile } from '../../profiles/profile-loader.js';
import {
  PROTOCOL_VERSION, computeLayoutHash, decodeWeightFrame, encodeMessage, encodeWeightFrame, parseMessage,
  type Message, type ResultMessage, type RoundAssignmentMessage,
} from '../../protocol/index.js';
import { silentLogger } from '../coordinator/helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-agent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('label-skewed shards', () => {
  it('are disjoint, cover the split, are dominated by their own classes, and are the same on every device', () => {
    const ds = syntheticDataset();
    const shards = Array.from({ length: 5 }, (_, i) => localShard(ds, { index: i, count: 5 }, { kind: 'skew', dominance: 0.8 }, 3));
    expect(shards.reduce((n, s) => n + s.train.count, 0)).toBe(ds.train.count);
    for (const s of shards) {
      expect(s.dominantClasses).toHaveLength(2);
      const own = s.dominantClasses.reduce((n, c) => n + s.classCounts[c]!, 0);
      expect(own / s.train.count).toBeGreaterThan(0.7);
    }
    // Per class, the five shards' counts add up to the split's: no sample dealt twice.
    const total = new Array<number>(ds.numClasses).fill(0);
    for (let i = 0; i < ds.train.count; i++) total[ds.train.labels[i]!]!++;
    for (let c = 0; c < ds.numClasses; c++) expect(shards.reduce((n, s) => n + s.classCounts[c]!, 0)).toBe(total[c]);
    const again = localShard(ds, { index: 2, count: 5 }, { kind: 'skew', dominance: 0.8 }, 3);
    expect(Buffer.from(again.train.features).equals(Buffer.from(shards[2]!.train.features))).toBe(true);
  });

  it('--shard parsing rejects bad specs with STRATA_ERR_BAD_FLAG', () => {
    expect(parseShardSpec('2/5')).toEqual({ index: 2, count: 5 });
    for (const bad of ['5/5', '-1/5', 'a/b', '1', '0/0']) expect(() => parseShardSpec(bad)).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG' }));
  });
});

/** A scripted coordinator: welcomes one agent, then hands out the assignments it is asked to, recording everything. */
class ScriptedCoordinator {
  readonly wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  readonly texts: Message[] = [];
  readonly binaries: Buffer[] = [];
  socket: WebSocket | undefined;
  #waiters: (() => void)[] = [];

  constructor() {
    this.wss.on('connection', (ws) => {
      this.socket = ws;
      ws.on('message', (data, isBinary) => {
        if (isBinary) this.binaries.push(data as Buffer);
        else {
          const m = parseMessage(data as Buffer);
          this.texts.push(m);
          if (m.type === 'hello') {
            ws.send(encodeMessage({
              type: 'welcome', protocolVersion: PROTOCOL_VERSION, agentId: m.agentId, serverVersion: 'test', heartbeatMs: 60_000,
              limits: { maxFrameBytes: 64 << 20, maxTextBytes: 65536, maxParams: 1 << 24, messagesPerSecond: 50, messageBurst: 100 },
            }));
          }
        }
        for (const w of this.#waiters.splice(0)) w();
      });
    });
  }

  get url(): string { return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}`; }

  async until(pred: () => boolean, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise<void>((r) => { const t = setTimeout(r, 50); this.#waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Assign a round and wait for its result and update frame. */
  async round(a: RoundAssignmentMessage, weights: Float32Array): Promise<{ result: ResultMessage; delta: Float32Array }> {
    await this.until(() => this.texts.some((m) => m.type === 'hello') && this.socket !== undefined);
    const before = this.binaries.length;
    this.socket!.send(encodeMessage(a));
    this.socket!.send(encodeWeightFrame({ kind: 'model', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: 0 }, weights));
    await this.until(() => this.binaries.length > before);
    const result = this.texts.findLast((m): m is ResultMessage => m.type === 'result' && m.roundId === a.roundId)!;
    const frame = decodeWeightFrame(this.binaries.at(-1)!, { kind: 'delta', roundId: a.roundId, layoutHash: a.layoutHash, elementCount: a.numParams, checkFinite: true, copy: true });
    this.socket!.send(encodeMessage({ type: 'update-ack', roundId: a.roundId, accepted: true }));
    return { result, delta: frame.weights };
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    await once(this.wss, 'close');
  }
}

const norm = (v: Float32Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('the device agent', () => {
  it('sends only weights and metrics; honours FedProx mu; reports device seconds and joules from its profile', async () => {
    await initBackend({ backend: 'auto' });
    const ds = syntheticDataset();
    const model = createModel({ kind: 'mlp', inputShape: ds.inputShape, numClasses: ds.numClasses, seed: 1 });
    const layout = layoutOf(model);
    const global = getFlatWeights(model);
    model.dispose();
    const layoutHash = computeLayoutHash(layout.entries.map((e) => ({ name: e.name, shape: e.shape })));
    const coord = new ScriptedCoordinator();
    await once(coord.wss, 'listening');
    const agent = new DeviceAgent({
      url: coord.url, agentId: 'unit-0', token: 't', profile: loadProfile('jetson-nano-5w'), data: syntheticDataset(), shard: { index: 0, count: 2 },
      db: path.join(dir, 'unit-0.sqlite'), samplesPerRound: 200, memory: 100, logger: silentLogger,
    });
    await agent.start();
    try {
      const assignment = (roundId: number, fedproxMu?: number): RoundAssignmentMessage => ({
        type: 'round-assignment', roundId, modelVersion: roundId - 1, deadlineMs: 60_000, deadlineAt: Date.now() + 60_000, layoutHash,
        numParams: layout.totalSize, updateKind: 'delta',
        config: { model: 'mlp', epochs: 1, batchSize: 20, learningRate: 0.05, method: 'er', replay: 0.5, seed: 9, ...(fedproxMu === undefined ? {} : { fedproxMu }) },
      });
      const plain = await coord.round(assignment(1), global);
      const prox = await coord.round(assignment(2, 10), global);

      // On the wire: the hello, results, heartbeats; binary frames are model-sized deltas and nothing else.
      for (const m of coord.texts) expect(['hello', 'result', 'heartbeat']).toContain(m.type);
      expect(coord.binaries).toHaveLength(2);
      for (const b of coord.binaries) expect(b.byteLength).toBe(40 + 4 * layout.totalSize);
      const hello = coord.texts.find((m) => m.type === 'hello')!;
      expect(JSON.stringify(hello).length).toBeLessThan(1024);

      for (const { result } of [plain, prox]) {
        expect(result.metrics.numSamples).toBe(200);
        expect(result.metrics.deviceSeconds).toBeGreaterThan(0);
        expect(result.metrics.hostSeconds).toBeGreaterThan(0);
        expect(result.joules.total).toBeGreaterThan(0);
        expect(result.joules.total).toBeCloseTo(result.joules.compute + result.joules.storage + result.joules.radio + result.joules.idle, 6);
        expect(result.energySource).toBe('model');
        expect(Number.isFinite(result.metrics.loss)).toBe(true);
      }
      // mu = 10 pulls every step back toward the round's global model: a much smaller delta from the same start.
      expect(norm(prox.delta)).toBeLessThan(0.6 * norm(plain.delta));
      expect(norm(prox.delta)).toBeGreaterThan(0);
    } finally {
      const report = await agent.stop();
      await coord.close();
      expect(report.rounds.map((r) => r.fedproxMu)).toEqual([null, 10]);
      expect(report.memory?.storedSamples).toBe(400);
    }
  });
});
