import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  PROTOCOL_VERSION,
  closeFrameFor,
  compileProtocolLimits,
  computeLayoutHash,
  decodeWeightFrame,
  encodeMessage,
  encodeWeightFrame,
  parseMessage,
  protocolErrorFromClose,
  ProtocolError,
  wsMaxPayload,
  type Message,
} from '../../protocol/index.js';

const layoutHash = computeLayoutHash([{ name: 'w', shape: [1000] }]);
let server: WebSocketServer | undefined;

afterEach(async () => {
  if (!server) return;
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server!.close(() => resolve()));
  server = undefined;
});

async function startServer(onConnection: (ws: WebSocket) => void): Promise<string> {
  const limits = compileProtocolLimits({ maxParams: 1000 });
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: wsMaxPayload(limits) });
  server.on('connection', onConnection);
  await once(server, 'listening');
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('over a real ws connection', () => {
  it('a binary weight frame sent by one side decodes on the other', async () => {
    let resolveReceived!: (value: { data: Buffer; isBinary: boolean }) => void;
    const received = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) => (resolveReceived = resolve));
    const url = await startServer((ws) => ws.once('message', (data, isBinary) => resolveReceived({ data: data as Buffer, isBinary })));
    const client = new WebSocket(url);
    await once(client, 'open');
    const weights = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    client.send(encodeWeightFrame({ kind: 'delta', roundId: 3, modelVersion: 2, layoutHash, numSamples: 77 }, weights));
    const { data, isBinary } = await received;
    expect(isBinary).toBe(true);
    const frame = decodeWeightFrame(data, { kind: 'delta', layoutHash, elementCount: 1000, roundId: 3, checkFinite: true });
    expect(frame.header.numSamples).toBe(77);
    expect(Array.from(frame.weights)).toEqual(Array.from(weights));
    client.close();
  });

  it('a version-mismatched hello is answered with an error message and close 4002', async () => {
    const url = await startServer((ws) => {
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        try {
          parseMessage(data as Buffer);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          ws.send(encodeMessage({ type: 'error', code: err.code, message: err.message }));
          const close = closeFrameFor(err);
          if (close) ws.close(close.code, close.reason);
        }
      });
    });
    const client = new WebSocket(url);
    const messages: Message[] = [];
    client.on('message', (data) => messages.push(parseMessage(data as Buffer)));
    await once(client, 'open');
    client.send(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION + 1 }));
    const [code, reason] = (await once(client, 'close')) as [number, Buffer];
    expect(code).toBe(4002);
    expect(protocolErrorFromClose(code, reason.toString())?.code).toBe('STRATA_ERR_PROTOCOL_VERSION');
    expect(messages).toEqual([expect.objectContaining({ type: 'error', code: 'STRATA_ERR_PROTOCOL_VERSION' })]);
  });
});
