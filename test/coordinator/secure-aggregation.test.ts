import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentConnection, type TrainFn } from '../../client-runtime/agent-connection.js';
import { Coordinator, FedAvg, FedBuff, MedianStrategy, type CoordinatorOptions, type FederatedStrategy, type RoundSummary } from '../../coordinator/index.js';
import type { SecAggUnmaskMessage, SecAggUnmaskSharesMessage } from '../../protocol/index.js';
import { SecAggClient } from '../../secure-aggregation/secagg-client.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { silentLogger, waitFor } from './helpers.js';

const P = 200;

/** Agent i's update: distinct, non-trivial values (so a copy of it in a file or a log is recognisable). */
function updateOf(i: number): Float32Array {
  return Float32Array.from({ length: P }, (_, k) => Math.sin(1000 * i + 7.3 * k) * 0.01 + i * 1e-3);
}
const samplesOf = (i: number): number => 20 + 3 * i;

interface Run {
  coordinator: Coordinator;
  store: CoordinatorStore;
  dir: string;
  log: string[];
  summaries: RoundSummary[];
  agents: AgentConnection[];
}

const runs: Run[] = [];
afterEach(async () => {
  for (const r of runs.splice(0)) {
    for (const a of r.agents) await a.stop();
    await r.coordinator.stop(0);
    r.store.close();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

async function start(options: CoordinatorOptions, strategy: FederatedStrategy = new FedAvg()): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-secagg-'));
  const store = CoordinatorStore.open(path.join(dir, 'c.db'));
  const log: string[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write(chunk: Buffer, _e, cb) { log.push(chunk.toString()); cb(); } }));
  const summaries: RoundSummary[] = [];
  const coordinator = new Coordinator({ port: 0, roundDeadlineMs: 20_000, overCommit: 1, ...options }, {
    strategy, store, model: { layout: [{ name: 'w', shape: [P] }], initialWeights: () => new Float32Array(P) }, logger,
    onRoundCompleted: (s) => summaries.push(s),
  });
  await coordinator.start();
  const run = { coordinator, store, dir, log, summaries, agents: [] };
  runs.push(run);
  return run;
}

function agent(run: Run, i: number, o: { delayMs?: number; secaggClient?: (id: string, round: number) => SecAggClient; secureAggregation?: boolean; stopAfterAck?: boolean } = {}): AgentConnection {
  const train: TrainFn = async () => {
    if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
    return { delta: updateOf(i), metrics: { numSamples: samplesOf(i), loss: 0.5, accuracy: 0.5, deviceSeconds: 0.1, hostSeconds: 0.01 } };
  };
  const a = new AgentConnection({
    url: run.coordinator.url, agentId: `a${i}`, token: 't', profile: 'test', train, logger: silentLogger, backoff: { initialMs: 50, maxMs: 200 },
    ...(o.secaggClient ? { secaggClient: o.secaggClient } : {}), ...(o.secureAggregation === false ? { secureAggregation: false } : {}),
  });
  if (o.stopAfterAck) a.on('ack', (m: { accepted: boolean }) => { if (m.accepted) void a.stop(); });
  a.start();
  run.agents.push(a);
  return a;
}

function plainFedAvg(ids: number[]): Float64Array {
  const out = new Float64Array(P);
  let w = 0;
  for (const i of ids) {
    const u = updateOf(i);
    for (let k = 0; k < P; k++) out[k]! += samplesOf(i) * u[k]!;
    w += samplesOf(i);
  }
  return out.map((v) => v / w);
}

/** Max |model - expected| beyond the quantization bound (and half a float32 ulp of rounding): <= 0 when within it. */
function excess(model: Float32Array, expected: Float64Array, bound: number): number {
  let worst = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < P; k++) worst = Math.max(worst, Math.abs(model[k]! - expected[k]!) - bound - Math.abs(expected[k]!) * 2 ** -23);
  return worst;
}

describe('secure aggregation with real agents on loopback', () => {
  it("a round's result is the plain FedAvg of the same updates within the quantization bound, and no individual update is stored or logged", async () => {
    const run = await start({ perRound: 5, rounds: 1, secureAggregation: true });
    for (let i = 0; i < 5; i++) agent(run, i);
    await run.coordinator.finished;
    const s = run.summaries[0]!;
    expect(s.secureAggregation).toMatchObject({ parties: 5, uploads: 5, sessions: 1 });
    expect(s.contributors).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    const bound = s.secureAggregation!.quantizationBound;
    expect(bound).toBeGreaterThan(0);
    expect(excess(run.coordinator.model!.weights, plainFedAvg([0, 1, 2, 3, 4]), bound)).toBeLessThanOrEqual(0);

    await run.coordinator.stop(0);
    // The database (and its WAL) and the log hold no agent's update, raw or weighted, not even 16 bytes of it.
    const files = readdirSync(run.dir).map((f) => readFileSync(path.join(run.dir, f)));
    const logText = run.log.join('');
    expect(logText).toContain('round completed');
    for (let i = 0; i < 5; i++) {
      const raw = Buffer.from(updateOf(i).buffer).subarray(40, 56);
      const weighted = Buffer.from(updateOf(i).map((v) => v * samplesOf(i)).buffer).subarray(40, 56);
      for (const f of files) {
        expect(f.includes(raw)).toBe(false);
        expect(f.includes(weighted)).toBe(false);
      }
      for (const k of [10, 11, 12]) {
        expect(logText).not.toContain(String(updateOf(i)[k]).slice(0, 9));
      }
    }
  });

  it('control: the same search finds the updates in a plain round\'s database', async () => {
    const run = await start({ perRound: 3, rounds: 1 });
    for (let i = 0; i < 3; i++) agent(run, i);
    await run.coordinator.finished;
    await run.coordinator.stop(0);
    const files = readdirSync(run.dir).map((f) => readFileSync(path.join(run.dir, f)));
    for (let i = 0; i < 3; i++) {
      const raw = Buffer.from(updateOf(i).buffer).subarray(40, 56);
      expect(files.some((f) => f.includes(raw))).toBe(true);
    }
  });

  it('still completes when 30% of the selected agents drop after their masked upload', async () => {
    const run = await start({ perRound: 10, rounds: 1, secureAggregation: true });
    // Three upload at once and leave as soon as their upload is acknowledged; the seven others upload later.
    for (let i = 0; i < 10; i++) agent(run, i, i < 3 ? { stopAfterAck: true } : { delayMs: 400 });
    await run.coordinator.finished;
    const s = run.summaries[0]!;
    expect(s.secureAggregation).toMatchObject({ parties: 10, uploads: 10 });
    expect(run.agents.slice(0, 3).every((a) => a.state === 'stopped')).toBe(true);
    expect(excess(run.coordinator.model!.weights, plainFedAvg([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), s.secureAggregation!.quantizationBound)).toBeLessThanOrEqual(0);
  });

  it('an agent that sends a wrong share is refused with STRATA_ERR_SECAGG_BAD_SHARE and the round completes without its shares', async () => {
    class WrongShare extends SecAggClient {
      override unmask(m: SecAggUnmaskMessage): SecAggUnmaskSharesMessage {
        const out = super.unmask(m);
        const first = out.shares[0]!;
        const bytes = Buffer.from(first.share, 'base64url');
        bytes[bytes.length - 1]! ^= 1;
        first.share = bytes.toString('base64url');
        return out;
      }
    }
    const run = await start({ perRound: 6, rounds: 1, secureAggregation: true });
    const errors: string[] = [];
    for (let i = 0; i < 6; i++) {
      const a = agent(run, i, i === 2 ? { secaggClient: (id, round) => new WrongShare(id, round) } : {});
      a.on('server-error', (e: { code: string }) => errors.push(`a${i}:${e.code}`));
    }
    await run.coordinator.finished;
    expect(run.store.rejections().map((r) => [r.agentId, r.code])).toEqual([['a2', 'STRATA_ERR_SECAGG_BAD_SHARE']]);
    await waitFor(() => errors.length > 0, 5000, 'the error reaching the agent');
    expect(errors).toEqual(['a2:STRATA_ERR_SECAGG_BAD_SHARE']);
    const s = run.summaries[0]!;
    expect(s.modelVersion).toBe(1);
    // Its masked update stays in the sum (removing it now would reveal it); its neighbours' shares unmask the round.
    expect(excess(run.coordinator.model!.weights, plainFedAvg([0, 1, 2, 3, 4, 5]), s.secureAggregation!.quantizationBound)).toBeLessThanOrEqual(0);
  });

  it('refuses an agent without the feature with STRATA_ERR_SECAGG_UNSUPPORTED', async () => {
    const run = await start({ perRound: 3, secureAggregation: true });
    const a = agent(run, 0, { secureAggregation: false });
    const fatal = await new Promise<{ code: string }>((resolve) => a.once('fatal', resolve));
    expect(fatal.code).toBe('STRATA_ERR_SECAGG_UNSUPPORTED');
  });

  it.each([
    ['median', () => new MedianStrategy(), {}],
    ['fedbuff', () => new FedBuff(), {}],
    ['a norm bound', () => new FedAvg(), { maxUpdateNorm: 10 }],
  ] as const)('refuses %s with STRATA_ERR_SECAGG_INCOMPATIBLE', async (_name, strategy, extra) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-secagg-'));
    const store = CoordinatorStore.open(path.join(dir, 'c.db'));
    const c = new Coordinator({ port: 0, secureAggregation: true, ...extra }, {
      strategy: strategy(), store, model: { layout: [{ name: 'w', shape: [P] }], initialWeights: () => new Float32Array(P) }, logger: silentLogger,
    });
    await expect(c.start()).rejects.toMatchObject({ code: 'STRATA_ERR_SECAGG_INCOMPATIBLE' });
    await c.stop(0);
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('agent privacy floor', () => {
  it('an agent that requires secure aggregation leaves a coordinator without it (STRATA_ERR_PRIVACY_FLOOR)', async () => {
    const run = await start({ perRound: 3 });
    const a = new AgentConnection({
      url: run.coordinator.url, agentId: 'floor', token: 't', profile: 'test', logger: silentLogger, privacyFloor: { secureAggregation: true },
      train: async () => { throw new Error('must not train'); },
    });
    run.agents.push(a);
    const fatal = new Promise<{ code: string }>((resolve) => a.once('fatal', resolve));
    a.start();
    expect((await fatal).code).toBe('STRATA_ERR_PRIVACY_FLOOR');
  });
});
