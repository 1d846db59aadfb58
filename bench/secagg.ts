/**
 * `npm run bench -- secagg`: 100 lightweight agents (no training: each
 * answers with its own pre-made update) against a coordinator child process
 * on loopback, a 100k-parameter model, a few rounds plain (FedAvg) and the
 * same rounds with secure aggregation (SecAgg+), side by side. Agents speak
 * the wire protocol directly (as the coordinator bench's do) and run the
 * device's SecAggClient, so their bytes and their secure-aggregation CPU are
 * measured exactly. Figures: the coordinator's CPU and round time over
 * plain, the agents' CPU per agent and round, bytes on the wire over plain,
 * and the largest difference between the two runs' final models.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import {
  PROTOCOL_VERSION, SECURE_AGGREGATION_FEATURE, UPLOAD_GRANT_FEATURE, encodeMessage, encodeWeightFrame, parseMessage, type Message, type RoundAssignmentMessage,
} from '../protocol/index.js';
import { SecAggClient } from '../secure-aggregation/secagg-client.js';
import type { BenchContext, Benchmark } from './benchmark.js';

const PARAMS = 100_000;
const CLIENTS = 100;
const ROUNDS = 4;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Side {
  coordinatorCpuSeconds: number;
  roundSeconds: number[];
  /** Agents' process CPU over the run, and the part spent in SecAggClient calls. */
  agentsCpuSeconds: number;
  secaggCpuSeconds: number;
  /** Bytes both ways over every agent's socket. */
  wireBytes: number;
  weights: Float32Array;
}

function updateOf(i: number, roundId: number): Float32Array {
  return Float32Array.from({ length: PARAMS }, (_, k) => Math.sin(i * 977 + roundId * 131 + k * 0.37) * 1e-3);
}
const samplesOf = (i: number): number => 16 + (i % 32);

async function run(secure: boolean, ctx: BenchContext): Promise<Side> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-secagg-'));
  const weightsOut = path.join(dir, 'weights.bin');
  const child = spawn(process.execPath, [path.join(root, 'dist/bench/secagg-coordinator.js'), JSON.stringify({
    params: PARAMS, clients: CLIENTS, rounds: ROUNDS, secure, db: path.join(dir, 'c.db'), weightsOut,
  })], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /url (ws:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`coordinator exited early (${code})`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const updates = Array.from({ length: CLIENTS }, () => new Map<number, Float32Array>());
  const cpu0 = process.cpuUsage();
  let secaggMicros = 0;
  const timed = <T>(f: () => T): T => {
    const c = process.cpuUsage();
    try {
      return f();
    } finally {
      const d = process.cpuUsage(c);
      secaggMicros += d.user + d.system;
    }
  };
  const sockets: WebSocket[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    sockets.push(ws);
    const id = `bench-${String(i).padStart(3, '0')}`;
    let assignment: RoundAssignmentMessage | undefined;
    let offered: RoundAssignmentMessage | undefined;
    let session: SecAggClient | undefined;
    let relayed = false;
    /** Trained, its result held until the session's shares are relayed. */
    let held: RoundAssignmentMessage | undefined;
    const send = (m: Message): void => ws.send(encodeMessage(m));
    const result = (a: RoundAssignmentMessage): void => {
      send({
        type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: { numSamples: samplesOf(i), loss: 1, accuracy: 0.5, deviceSeconds: 0, hostSeconds: 0 },
        joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model',
      });
      offered = a;
    };
    const frame = (a: RoundAssignmentMessage): Buffer => {
      const delta = updates[i]!.get(a.roundId)!;
      updates[i]!.delete(a.roundId);
      const header = { roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: samplesOf(i) };
      if (session === undefined) return encodeWeightFrame({ kind: 'delta', ...header }, delta);
      const w = samplesOf(i);
      const { payload } = timed(() => session!.mask(delta.map((v) => v * w), w));
      return encodeWeightFrame({ kind: 'masked', ...header }, new Float32Array(payload.buffer, payload.byteOffset, payload.length));
    };
    ws.on('open', () => send({
      type: 'hello', protocolVersion: PROTOCOL_VERSION, agentId: id, token: 'x', profile: 'bench', capabilities: { models: [], datasets: [], clMethods: [] },
      features: [UPLOAD_GRANT_FEATURE, SECURE_AGGREGATION_FEATURE],
    }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const a = assignment;
        if (!a) return;
        assignment = undefined;
        updates[i]!.set(a.roundId, updateOf(i, a.roundId));
        if (session === undefined || relayed) result(a);
        else held = a;
        return;
      }
      const m = parseMessage(data as Buffer);
      switch (m.type) {
        case 'round-assignment':
          assignment = m;
          relayed = false;
          held = undefined;
          session = m.secureAggregation === undefined ? undefined : timed(() => new SecAggClient(id, m.roundId));
          if (session !== undefined) send(timed(() => session!.keys()));
          return;
        case 'secagg-setup':
          send(timed(() => session!.setup(m)));
          return;
        case 'secagg-relay': {
          timed(() => session!.relay(m));
          relayed = true;
          if (held !== undefined) result(held);
          held = undefined;
          return;
        }
        case 'secagg-unmask':
          send(timed(() => session!.unmask(m)));
          return;
        case 'upload-grant':
          if (offered?.roundId === m.roundId) {
            ws.send(frame(offered));
            offered = undefined;
          }
          return;
        default:
          return;
      }
    });
    ws.on('error', () => undefined);
  }
  const code = await exited;
  const cpu = process.cpuUsage(cpu0);
  let wireBytes = 0;
  for (const ws of sockets) {
    const s = (ws as unknown as { _socket?: { bytesRead: number; bytesWritten: number } })._socket;
    wireBytes += (s?.bytesRead ?? 0) + (s?.bytesWritten ?? 0);
    ws.terminate();
  }
  if (code !== 0) throw new Error(`coordinator exited with ${code}`);
  const line = out.trim().split('\n').at(-1)!;
  const c = JSON.parse(line) as { cpuSeconds: number; roundSeconds: number[] };
  const w = readFileSync(weightsOut);
  rmSync(dir, { recursive: true, force: true });
  const side: Side = {
    coordinatorCpuSeconds: c.cpuSeconds, roundSeconds: c.roundSeconds, agentsCpuSeconds: (cpu.user + cpu.system) / 1e6, secaggCpuSeconds: secaggMicros / 1e6,
    wireBytes, weights: new Float32Array(w.buffer, w.byteOffset, w.length / 4),
  };
  ctx.log(`  ${secure ? 'secure aggregation' : 'plain FedAvg     '}: coordinator CPU ${side.coordinatorCpuSeconds.toFixed(2)} s, rounds ${c.roundSeconds.map((s) => `${(s * 1000).toFixed(0)} ms`).join(' ')}, agents CPU ${side.agentsCpuSeconds.toFixed(2)} s (secagg ${side.secaggCpuSeconds.toFixed(2)} s), wire ${(wireBytes / 1e6).toFixed(1)} MB`);
  return side;
}

const bench: Benchmark = {
  description: `${CLIENTS} agents x ${ROUNDS} rounds of a ${PARAMS / 1000}k-parameter model on loopback: secure aggregation (SecAgg+) vs plain FedAvg`,
  async run(ctx) {
    const plain = await run(false, ctx);
    const secure = await run(true, ctx);
    let maxErr = 0;
    for (let k = 0; k < PARAMS; k++) maxErr = Math.max(maxErr, Math.abs(secure.weights[k]! - plain.weights[k]!));
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const figures = {
      coordinatorCpuOverPlain: Number((secure.coordinatorCpuSeconds / plain.coordinatorCpuSeconds).toFixed(2)),
      roundSecondsOverPlain: Number((median(secure.roundSeconds) / median(plain.roundSeconds)).toFixed(2)),
      agentCpuSecondsPerRound: Number((secure.agentsCpuSeconds / (CLIENTS * ROUNDS)).toFixed(4)),
      agentSecAggCpuSecondsPerRound: Number((secure.secaggCpuSeconds / (CLIENTS * ROUNDS)).toFixed(4)),
      plainAgentCpuSecondsPerRound: Number((plain.agentsCpuSeconds / (CLIENTS * ROUNDS)).toFixed(4)),
      bytesOverPlain: Number((secure.wireBytes / plain.wireBytes).toFixed(3)),
      maxErrorVsPlain: maxErr,
      coordinatorCpuSeconds: { plain: Number(plain.coordinatorCpuSeconds.toFixed(2)), secure: Number(secure.coordinatorCpuSeconds.toFixed(2)) },
      roundSecondsMedian: { plain: Number(median(plain.roundSeconds).toFixed(3)), secure: Number(median(secure.roundSeconds).toFixed(3)) },
      wireMB: { plain: Number((plain.wireBytes / 1e6).toFixed(1)), secure: Number((secure.wireBytes / 1e6).toFixed(1)) },
      clients: CLIENTS, params: PARAMS, rounds: ROUNDS,
    };
    const ok = (v: boolean): string => (v ? 'ok' : 'MISSED');
    ctx.log(`coordinator CPU: x${figures.coordinatorCpuOverPlain} of plain (target <= 3): ${ok(figures.coordinatorCpuOverPlain <= 3)}; round time x${figures.roundSecondsOverPlain}`);
    ctx.log(`agent CPU per round: ${figures.agentCpuSecondsPerRound} s (secure aggregation itself ${figures.agentSecAggCpuSecondsPerRound} s; plain ${figures.plainAgentCpuSecondsPerRound} s) (target <= 2 s): ${ok(figures.agentCpuSecondsPerRound <= 2)}`);
    ctx.log(`bytes on the wire: x${figures.bytesOverPlain} of plain; largest difference from plain's model after ${ROUNDS} rounds: ${maxErr.toExponential(2)}`);
    return figures;
  },
};

export default bench;
