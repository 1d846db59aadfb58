import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentConnection, type TrainFn } from '../../client-runtime/agent-connection.js';
import { Coordinator, FedAvg, FedBuff, MedianStrategy, type CoordinatorOptions, type FederatedStrategy, type RoundSummary } from '../../coordinator/index.js';
import type { SecAggUnmaskMessage, SecAggUnmaskSharesMessage } from '../../protocol/index.js';
import { DifferentialPrivacy } from '../../privacy/differential-privacy.js';
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

/** Every file under `dir` (the database, its WAL, an update spool), read whole. */
function filesUnder(dir: string): Buffer[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => readFileSync(path.join(e.parentPath, e.name)));
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
    const files = filesUnder(run.dir);
    const logText = run.log.join('');
    // The log under test is the round's own: its lines parse, and one carries the completed round.
    expect(run.log.flatMap((chunk) => chunk.split('\n')).filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { roundId?: number; modelVersion?: number; applied?: number })
      .some((l) => l.roundId === 1 && l.modelVersion === 1 && l.applied === 5)).toBe(true);
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

  it('control: the same search finds the updates a plain round holds (its update spool)', async () => {
    // Two of three updates in: the round stays open with them persisted.
    const run = await start({ perRound: 3, minClients: 2, rounds: 1 });
    for (let i = 0; i < 2; i++) agent(run, i);
    await waitFor(() => run.coordinator.status().acceptedThisRound === 2, 10_000, 'two accepted updates');
    const files = filesUnder(run.dir);
    for (let i = 0; i < 2; i++) {
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

  it('a coordinator stopped mid-round resumes the round with a new session on restart; agents resend what they trained', async () => {
    const run = await start({ perRound: 3, rounds: 1, secureAggregation: true });
    const agents = [0, 1, 2].map((i) => agent(run, i, { delayMs: 1500 }));
    await waitFor(() => run.coordinator.status().engine === 'open' && run.coordinator.status().assigned === 3, 10_000, 'the round assigned');
    await run.coordinator.stop(0);
    const dbFile = run.store.file;
    run.store.close();
    const store = CoordinatorStore.open(dbFile);
    const summaries: RoundSummary[] = [];
    const restarted = new Coordinator({ port: run.coordinator.port, roundDeadlineMs: 20_000, overCommit: 1, perRound: 3, rounds: 1, secureAggregation: true }, {
      strategy: new FedAvg(), store, model: { layout: [{ name: 'w', shape: [P] }], initialWeights: () => new Float32Array(P) }, logger: silentLogger,
      onRoundCompleted: (x) => summaries.push(x),
    });
    runs.push({ ...run, coordinator: restarted, store, agents });
    run.agents.length = 0;
    await restarted.start();
    await restarted.finished;
    expect(summaries.map((x) => [x.roundId, x.secureAggregation?.uploads])).toEqual([[1, 3]]);
    expect(excess(restarted.model!.weights, plainFedAvg([0, 1, 2]), summaries[0]!.secureAggregation!.quantizationBound)).toBeLessThanOrEqual(0);
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

describe('differential privacy on the daemon', () => {
  it('distributed DP under secure aggregation: epsilon per round and in total in /status, /metrics and the round summaries', async () => {
    const run = await start({ perRound: 4, rounds: 2, secureAggregation: true }, new DifferentialPrivacy(new FedAvg(), { mode: 'central', noiseMultiplier: 1.1, clip: 0.05, delta: 1e-5 }));
    for (let i = 0; i < 4; i++) agent(run, i);
    await run.coordinator.finished;
    const [first, second] = run.summaries;
    expect(first!.privacy).toMatchObject({ mode: 'central', distributed: true, noiseMultiplier: 1.1, clip: 0.05, delta: 1e-5, rounds: 1 });
    expect(second!.privacy!.epsilon).toBeGreaterThan(first!.privacy!.epsilon);
    const status = (await (await fetch(`${run.coordinator.httpUrl}/status`)).json()) as { privacy: { secureAggregation: boolean; dp: { epsilon: number; rounds: number } } };
    expect(status.privacy.secureAggregation).toBe(true);
    expect(status.privacy.dp).toMatchObject({ rounds: 2, epsilon: second!.privacy!.epsilon });
    const metrics = await (await fetch(`${run.coordinator.httpUrl}/metrics`)).text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('strata_dp_epsilon')).toBeCloseTo(second!.privacy!.epsilon, 6);
    expect(value('strata_dp_delta')).toBe(1e-5);
    expect(value('strata_secagg_sessions_total\\{outcome="unmasked"\\}')).toBe(2);
    // Clipped to 0.05 and noised in shares: the model moved by at most about the clip (plus noise), not by the raw updates.
    const w = run.coordinator.model!.weights;
    expect(Math.hypot(...w)).toBeLessThan(0.05 * 2 + 1.1 * 0.05 * 2 * 6);
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
