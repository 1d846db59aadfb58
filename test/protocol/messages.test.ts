import { describe, expect, it } from 'vitest';
import {
  MESSAGE_TYPES,
  PROTOCOL_VERSION,
  ProtocolError,
  encodeMessage,
  errorMessageFor,
  parseMessage,
  protocolErrorFromMessage,
  type Message,
  type ProtocolErrorCode,
} from '../../protocol/index.js';

const hello: Message = {
  type: 'hello',
  protocolVersion: PROTOCOL_VERSION,
  agentId: 'agent-01',
  token: 's3cret-token',
  profile: 'raspberry-pi-4',
  capabilities: { models: ['mlp', 'cnn'], datasets: ['mnist'], clMethods: ['finetune', 'er', 'derpp'], maxParams: 1_000_000 },
  features: ['upload-grant'],
};

const samples: Message[] = [
  hello,
  {
    type: 'welcome',
    protocolVersion: PROTOCOL_VERSION,
    agentId: 'agent-01',
    serverVersion: '0.1.0',
    heartbeatMs: 15_000,
    limits: { maxFrameBytes: 67_108_904, maxTextBytes: 65_536, maxParams: 16_777_216, messagesPerSecond: 50, messageBurst: 100 },
    features: ['upload-grant'],
  },
  {
    type: 'round-assignment',
    roundId: 7,
    modelVersion: 6,
    deadlineMs: 30_000,
    deadlineAt: 1_700_000_030_000,
    layoutHash: '0123456789abcdef',
    numParams: 235_146,
    updateKind: 'delta',
    config: { model: 'mlp', epochs: 1, batchSize: 32, learningRate: 0.01, method: 'er', replay: 0.5, fedproxMu: 0.01, seed: 42 },
  },
  {
    type: 'result',
    roundId: 7,
    modelVersion: 6,
    metrics: { numSamples: 1200, loss: 0.42, accuracy: 0.91, deviceSeconds: 12.5, hostSeconds: 1.25 },
    joules: { compute: 10, storage: 0.5, radio: 2, idle: 1, total: 13.5 },
    energySource: 'model',
  },
  { type: 'update-ack', roundId: 7, accepted: false, code: 'STRATA_ERR_NON_FINITE' },
  { type: 'upload-grant', roundId: 7 },
  { type: 'heartbeat', sentAt: 1_700_000_000_000 },
  { type: 'heartbeat' },
  { type: 'error', code: 'STRATA_ERR_STALE_ROUND', message: 'round 3 is closed', details: { roundId: 3 }, roundId: 3 },
  { type: 'bye', reason: 'shutting down' },
  { type: 'bye' },
  { type: 'secagg-keys', roundId: 3, encryptionKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', maskKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD' },
  { type: 'secagg-setup', roundId: 3, x: 2, threshold: 2, range: 1024, scale: 20_000, neighbours: [{ agentId: 'a1', x: 1, encryptionKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', maskKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] },
  { type: 'secagg-shares', roundId: 3, boxes: [{ to: 'a1', box: 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' }], commitments: [{ holder: 'a1', self: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', key: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] },
  { type: 'secagg-relay', roundId: 3, boxes: [{ from: 'a1', box: 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' }] },
  { type: 'secagg-unmask', roundId: 3, survivors: ['a1'], dropped: ['a2'] },
  { type: 'secagg-unmask-shares', roundId: 3, shares: [{ of: 'a1', kind: 'self', share: 'CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC' }] },
];

function codeOf(fn: () => unknown): ProtocolErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return (err as ProtocolError).code;
  }
  return undefined;
}

function errorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

describe('messages', () => {
  it('covers every message type in the samples', () => {
    expect(new Set(samples.map((m) => m.type))).toEqual(new Set(MESSAGE_TYPES));
  });

  it.each(samples.map((m) => [m.type, m] as const))('round-trips %s', (_type, message) => {
    const text = encodeMessage(message);
    expect(parseMessage(text)).toEqual(message);
    // ws hands text frames over as Buffers.
    expect(parseMessage(Buffer.from(text))).toEqual(message);
  });

  it('malformed JSON -> STRATA_ERR_MALFORMED_JSON, connection stays open', () => {
    const err = errorOf(() => parseMessage('{"type":"hello",'));
    expect(err.code).toBe('STRATA_ERR_MALFORMED_JSON');
    expect(err.closeCode).toBeNull();
    expect(codeOf(() => parseMessage(''))).toBe('STRATA_ERR_MALFORMED_JSON');
    expect(codeOf(() => parseMessage(Buffer.from([0xff, 0xfe, 0x00])))).toBe('STRATA_ERR_MALFORMED_JSON');
  });

  it('unknown type -> STRATA_ERR_UNKNOWN_TYPE', () => {
    const err = errorOf(() => parseMessage('{"type":"launch-missiles"}'));
    expect(err.code).toBe('STRATA_ERR_UNKNOWN_TYPE');
    expect(err.details.type).toBe('launch-missiles');
    expect(err.closeCode).toBeNull();
    // Inherited names are not message types.
    expect(codeOf(() => parseMessage('{"type":"__proto__"}'))).toBe('STRATA_ERR_UNKNOWN_TYPE');
  });

  it('non-object or missing type -> STRATA_ERR_BAD_FRAME', () => {
    for (const text of ['[]', '42', 'null', '"hello"', '{}', '{"type":5}']) {
      expect(codeOf(() => parseMessage(text)), text).toBe('STRATA_ERR_BAD_FRAME');
    }
  });

  it('schema violations -> STRATA_ERR_BAD_FRAME with the failing path', () => {
    const bad: [string, unknown][] = [
      ['agentId with a space', { ...hello, agentId: 'agent 01' }],
      ['missing token', { ...hello, token: undefined }],
      ['negative roundId', { ...samples[2], roundId: -1 }],
      ['fractional epochs', { ...samples[2], config: { ...(samples[2] as { config: object }).config, epochs: 1.5 } }],
      ['bad layout hash', { ...samples[2], layoutHash: 'XYZ' }],
      ['accuracy above 1', { ...samples[3], metrics: { ...(samples[3] as { metrics: object }).metrics, accuracy: 1.5 } }],
      ['negative joules', { ...samples[3], joules: { compute: -1, storage: 0, radio: 0, idle: 0, total: 0 } }],
      ['unknown energy source', { ...samples[3], energySource: 'guess' }],
      ['error code not coded', { type: 'error', code: 'oops', message: 'x' }],
    ];
    for (const [label, value] of bad) {
      const err = errorOf(() => parseMessage(JSON.stringify(value)));
      expect(err.code, label).toBe('STRATA_ERR_BAD_FRAME');
      expect(err.details.reason, label).toBe('schema');
      expect((err.details.issues as unknown[]).length, label).toBeGreaterThan(0);
    }
    const err = errorOf(() => parseMessage(JSON.stringify({ ...samples[2], roundId: -1 })));
    expect((err.details.issues as { path: string }[])[0]?.path).toBe('roundId');
  });

  it('strips unknown keys (optional additions within a version)', () => {
    const parsed = parseMessage(JSON.stringify({ type: 'heartbeat', sentAt: 5, future: true }));
    expect(parsed).toEqual({ type: 'heartbeat', sentAt: 5 });
  });

  it('features are optional and negotiated: a hello without them is valid, unknown names are kept for the peer to ignore', () => {
    const { features: _features, ...base } = hello as Extract<Message, { type: 'hello' }>;
    expect(parseMessage(JSON.stringify(base))).toEqual(base);
    expect(parseMessage(JSON.stringify({ ...base, features: ['upload-grant', 'from-the-future'] }))).toMatchObject({ features: ['upload-grant', 'from-the-future'] });
    expect(codeOf(() => parseMessage(JSON.stringify({ ...base, features: ['Not A Name'] })))).toBe('STRATA_ERR_BAD_FRAME');
    expect(codeOf(() => parseMessage(JSON.stringify({ type: 'upload-grant' })))).toBe('STRATA_ERR_BAD_FRAME');
  });

  it('version mismatch -> STRATA_ERR_PROTOCOL_VERSION with close code 4002, before the schema', () => {
    // A hello of another version may have a different shape; it still gets the version error, not a schema error.
    const err = errorOf(() => parseMessage(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION + 1, somethingNew: {} })));
    expect(err.code).toBe('STRATA_ERR_PROTOCOL_VERSION');
    expect(err.closeCode).toBe(4002);
    expect(err.closesConnection).toBe(true);
    expect(err.details).toMatchObject({ expected: PROTOCOL_VERSION, received: PROTOCOL_VERSION + 1 });
    expect(codeOf(() => parseMessage(JSON.stringify({ ...hello, protocolVersion: undefined })))).toBe('STRATA_ERR_PROTOCOL_VERSION');
    expect(codeOf(() => parseMessage(JSON.stringify({ ...samples[1], protocolVersion: 0 })))).toBe('STRATA_ERR_PROTOCOL_VERSION');
  });

  it('oversized text -> STRATA_ERR_FRAME_TOO_LARGE (close 1009) before parsing', () => {
    const text = JSON.stringify({ type: 'bye', reason: 'x'.repeat(200) });
    const err = errorOf(() => parseMessage(text, { maxBytes: 100 }));
    expect(err.code).toBe('STRATA_ERR_FRAME_TOO_LARGE');
    expect(err.closeCode).toBe(1009);
    // Multi-byte characters count as bytes, not UTF-16 units.
    const wide = JSON.stringify({ type: 'bye', reason: 'é'.repeat(40) });
    expect(wide.length).toBeLessThanOrEqual(100);
    expect(codeOf(() => parseMessage(wide, { maxBytes: 100 }))).toBe('STRATA_ERR_FRAME_TOO_LARGE');
    expect(parseMessage(text, { maxBytes: 1000 }).type).toBe('bye');
  });

  it('encodeMessage refuses invalid outgoing messages', () => {
    const bad = { ...samples[3], metrics: { numSamples: -1 } } as unknown as Message;
    expect(codeOf(() => encodeMessage(bad))).toBe('STRATA_ERR_BAD_FRAME');
  });

  it('errors travel as error messages and come back as the same coded error', () => {
    const original = new ProtocolError('STRATA_ERR_UPDATE_NORM', 'update norm 12.5 above bound 10', { norm: 12.5, bound: 10 });
    const wire = parseMessage(encodeMessage(errorMessageFor(original, 4)));
    expect(wire).toEqual({ type: 'error', code: 'STRATA_ERR_UPDATE_NORM', message: original.message, details: { norm: 12.5, bound: 10 }, roundId: 4 });
    if (wire.type !== 'error') throw new Error('unreachable');
    const back = protocolErrorFromMessage(wire);
    expect(back.code).toBe('STRATA_ERR_UPDATE_NORM');
    expect(back.details.norm).toBe(12.5);
    const unknown = protocolErrorFromMessage({ type: 'error', code: 'STRATA_ERR_FROM_THE_FUTURE', message: 'x' });
    expect(unknown.code).toBe('STRATA_ERR_INTERNAL');
    expect(unknown.details.remoteCode).toBe('STRATA_ERR_FROM_THE_FUTURE');
  });
});
