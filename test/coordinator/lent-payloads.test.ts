import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { LENT_PAYLOAD_MIN_BYTES, PayloadLender, lendingWebSocket } from '../../coordinator/server/lent-payloads.js';
import { FedAvg, MedianStrategy } from '../../coordinator/index.js';
import { UPLOAD_GRANT_FEATURE, encodeWeightFrame, type RoundAssignmentMessage } from '../../protocol/index.js';
import { RawClient, startCoordinator, type Harness } from './helpers.js';

interface Seen { bytes: number; sha: string; isBinary: boolean; buffer: ArrayBufferLike }

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

let server: WebSocketServer | undefined;
let client: WebSocket | undefined;
let harness: Harness | undefined;
const raws: RawClient[] = [];
afterEach(async () => {
  client?.terminate();
  server?.close();
  for (const r of raws.splice(0)) r.close();
  await harness?.stop();
  server = undefined; client = undefined; harness = undefined;
});

describe('large binary payloads read into one reused buffer', () => {
  it('lends the buffer to whole binary messages over several socket chunks, and reads everything else as ws does', async () => {
    const lender = new PayloadLender();
    server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, WebSocket: lendingWebSocket(lender), allowSynchronousEvents: true });
    await once(server, 'listening');
    const seen: Seen[] = [];
    server.on('connection', (ws) => ws.on('message', (data: Buffer, isBinary) => {
      // What the handler sees while it runs (the contract: done with the bytes when it returns).
      seen.push({ bytes: data.length, sha: sha(data), isBinary, buffer: data.buffer });
    }));
    client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, { perMessageDeflate: false });
    await once(client, 'open');
    const big1 = pattern(400_000, 1);
    const big2 = pattern(500_000, 2);
    const part1 = pattern(350_000, 3);
    const part2 = pattern(300_000, 4);
    const text = 'x'.repeat(400_000);
    const small = pattern(1000, 5);
    client.send(big1);
    client.send(big2);
    client.send(part1, { fin: false });
    client.send(part2, { fin: true });
    client.send(text);
    client.send(small);
    const big3 = pattern(LENT_PAYLOAD_MIN_BYTES + 70_000, 6);
    client.send(big3);
    for (let i = 0; i < 200 && seen.length < 6; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen.map((s) => [s.bytes, s.sha, s.isBinary])).toEqual([
      [big1.length, sha(big1), true],
      [big2.length, sha(big2), true],
      [part1.length + part2.length, sha(Buffer.concat([part1, part2])), true],
      [text.length, sha(Buffer.from(text)), false],
      [small.length, sha(small), true],
      [big3.length, sha(big3), true],
    ]);
    // The three whole binary messages over the threshold were read into the lender's buffer (grown once, for the
    // larger second one, then reused for the third); the rest were not.
    expect(lender.lent).toBe(3);
    const same = (i: number, j: number): boolean => seen[i]!.buffer === seen[j]!.buffer;
    expect([same(5, 1), same(1, 0), same(2, 1), same(3, 1), same(4, 1)]).toEqual([true, false, false, false, false]);
  });

  it('leaves alone what is not a ws Receiver it knows', () => {
    const lender = new PayloadLender();
    expect(lender.attach({})).toBe(false);
    expect(lender.attach({ consume: () => Buffer.alloc(0), _buffers: [], _bufferedBytes: 0 })).toBe(false);
  });

  it('a coordinator takes 400 KB update frames from several agents, read into the one buffer, into the right mean and median', async () => {
    const N = 100_000;
    for (const strategy of [new FedAvg(), new MedianStrategy()]) {
      harness = await startCoordinator({ perRound: 3, overCommit: 1, rounds: 1, roundDeadlineMs: 20_000 }, N, undefined, ':memory:', strategy);
      const values = [0.25, -0.5, 2];
      const peers = await Promise.all(values.map(async (_, i) => {
        const c = new RawClient(harness!.url);
        raws.push(c);
        await c.hello(`big${i}`, 'x', { features: [UPLOAD_GRANT_FEATURE] });
        await c.until(() => c.messages.some((m) => m.type === 'round-assignment') && c.binaries.length > 0);
        return { c, a: c.messages.find((m) => m.type === 'round-assignment') as RoundAssignmentMessage };
      }));
      for (const { c, a } of peers) {
        c.send({
          type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: { numSamples: 10, loss: 1, accuracy: 0.1, deviceSeconds: 1, hostSeconds: 1 },
          joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model',
        });
      }
      // Each delta varies along the vector, so a mix-up of two frames' bytes shows in the result.
      peers.forEach(({ c, a }, i) => {
        void c.until(() => c.messages.some((m) => m.type === 'upload-grant')).then(() => {
          const delta = Float32Array.from({ length: N }, (_, j) => values[i]! * (1 + (j % 13)));
          c.ws.send(encodeWeightFrame({ kind: 'delta', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: 10 }, delta));
        });
      });
      await harness.coordinator.finished;
      const w = harness.store.latestModel()!.weights;
      const expected = strategy.name === 'median' ? 0.25 : (0.25 - 0.5 + 2) / 3;
      for (const j of [0, 1, 12, 13, 4097, N - 1]) expect(w[j]!).toBeCloseTo(expected * (1 + (j % 13)), 5);
      for (const r of raws.splice(0)) r.close();
      await harness.stop();
      harness = undefined;
    }
  });
});
