/**
 * `npm run bench -- coordinator`: N lightweight agents (no training: each
 * answers its assignment with its result and, once the coordinator grants
 * the upload (feature `upload-grant`), a pre-made update frame) against a real
 * coordinator child process (so its RSS is its own) on loopback, rounds of a
 * 100k-parameter model: 1,000 agents x 10 rounds, 100 agents x 10 rounds, and
 * 100 agents x 100 rounds (the same 10,000 updates as the 1,000-agent run).
 *
 * Peak RSS is compared at equal update volume: most of a peak is upload
 * buffers already dead and waiting for V8 to collect them (heaptrack at the
 * peak: ~45-60 MB of ArrayBuffers from the WebSocket receiver), and the
 * highest point of that saw-tooth grows with how long the run takes in
 * updates, not with the number of agents. A 100-agent run of 10 rounds
 * (1.5 s) ends before its resident set has settled, so its peak is printed
 * beside the other but is not the one the ratio is taken against.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { PROTOCOL_VERSION, UPLOAD_GRANT_FEATURE, encodeMessage, encodeWeightFrame, parseMessage, type RoundAssignmentMessage } from '../protocol/index.js';
import type { BenchContext, Benchmark } from './benchmark.js';

const PARAMS = 100_000;
const ROUNDS = 10;
/** The 1,000-agent run's updates, for the 100-agent run at equal volume. */
const UPDATES = 1000 * ROUNDS;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Extra node flags for the coordinator process, e.g. `--max-semi-space-size=2` (V8's young generation grows under the 1,000-connection burst). Default none. */
const coordinatorNodeFlags = (process.env['STRATA_BENCH_COORDINATOR_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean);

interface RunResult {
  clients: number;
  rounds: number;
  roundSeconds: number[];
  peakRssMB: number;
  /** V8's young generation at the end of the run (`strata coordinator` pins it at start-up). */
  newSpaceMB: number;
  aggregationMBps: number;
  endToEndMBps: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function run(clients: number, rounds: number, ctx: BenchContext): Promise<RunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-coord-'));
  const out = path.join(dir, 'out');
  const child = spawn(process.execPath, [
    ...coordinatorNodeFlags, path.join(root, 'dist/cli/strata.js'), 'coordinator', '--port', '0', '--db', path.join(dir, 'c.db'), '--model', `flat:${PARAMS}`,
    '--rounds', String(rounds), '--per-round', String(clients), '--min-clients', String(clients), '--over-commit', '1',
    '--deadline', '300', '--heartbeat', '60000', '--out', out,
  ], { cwd: root, env: { ...process.env, STRATA_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const roundSeconds: number[] = [];
  let errBuf = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errBuf += chunk.toString();
    let i;
    while ((i = errBuf.indexOf('\n')) >= 0) {
      const line = errBuf.slice(0, i);
      errBuf = errBuf.slice(i + 1);
      if (!line.includes('coordinator.round-completed')) continue;
      const l = JSON.parse(line) as { event?: string; seconds: number; roundId: number };
      if (l.event !== 'coordinator.round-completed') continue;
      roundSeconds.push(l.seconds);
      if (rounds <= ROUNDS) ctx.log(`  ${clients} agents: round ${l.roundId} ${(l.seconds * 1000).toFixed(0)} ms`);
    }
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const m = /listening on (ws:\/\/\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`coordinator exited early (${code})`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

  // One pre-made frame per (round, model version), shared by every agent.
  const delta = Float32Array.from({ length: PARAMS }, (_, i) => ((i % 17) - 8) * 1e-4);
  let frame: { key: string; buf: Buffer } | undefined;
  const frameFor = (a: RoundAssignmentMessage): Buffer => {
    const key = `${a.roundId}/${a.modelVersion}`;
    if (frame?.key !== key) {
      frame = { key, buf: encodeWeightFrame({ kind: 'delta', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: 32 }, delta) };
    }
    return frame.buf;
  };
  const sockets: WebSocket[] = [];
  for (let k = 0; k < clients; k++) {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    sockets.push(ws);
    let assignment: RoundAssignmentMessage | undefined;
    let offered: RoundAssignmentMessage | undefined;
    ws.on('open', () => ws.send(encodeMessage({
      type: 'hello', protocolVersion: PROTOCOL_VERSION, agentId: `bench-${k}`, token: 'x', profile: 'bench', capabilities: { models: [], datasets: [], clMethods: [] },
      features: [UPLOAD_GRANT_FEATURE],
    })));
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        const m = parseMessage(data as Buffer);
        if (m.type === 'round-assignment') assignment = m;
        if (m.type === 'upload-grant' && offered?.roundId === m.roundId) {
          ws.send(frameFor(offered));
          offered = undefined;
        }
        return;
      }
      const a = assignment;
      if (!a) return;
      assignment = undefined;
      ws.send(encodeMessage({
        type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: { numSamples: 32, loss: 1, accuracy: 0.5, deviceSeconds: 0, hostSeconds: 0 },
        joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model',
      }));
      offered = a;
    });
    ws.on('error', () => undefined);
  }
  const code = await exited;
  for (const ws of sockets) ws.terminate();
  if (code !== 0) throw new Error(`coordinator exited with ${code}`);
  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { status: { peakRssBytes: number; aggregationMBps: number; newSpaceBytes: number } };
  rmSync(dir, { recursive: true, force: true });
  const updateMB = (clients * rounds * PARAMS * 4) / 1e6;
  const totalSeconds = roundSeconds.reduce((a, b) => a + b, 0);
  return {
    clients, rounds, roundSeconds, peakRssMB: report.status.peakRssBytes / 2 ** 20, newSpaceMB: report.status.newSpaceBytes / 2 ** 20, aggregationMBps: report.status.aggregationMBps,
    endToEndMBps: updateMB / totalSeconds,
  };
}

const bench: Benchmark = {
  description: `1,000 lightweight agents x ${ROUNDS} rounds of a ${PARAMS / 1000}k-parameter model on loopback (coordinator in a child process)`,
  async run(ctx) {
    const small = await run(100, ROUNDS, ctx);
    const equalVolume = await run(100, UPDATES / 100, ctx);
    const large = await run(1000, ROUNDS, ctx);
    const sorted = [...large.roundSeconds].sort((a, b) => a - b).map((s) => s * 1000);
    // Flatness: what each agent beyond the first 100 adds to the coordinator's peak resident memory, at equal update volume.
    const growthKBPerAgent = ((large.peakRssMB - equalVolume.peakRssMB) * 1024) / (large.clients - equalVolume.clients);
    const figures = {
      aggregationMBps: Math.round(large.aggregationMBps),
      roundLatencyMsMedian: Math.round(percentile(sorted, 0.5)),
      roundLatencyMsP95: Math.round(percentile(sorted, 0.95)),
      peakRssMBAt100: Math.round(equalVolume.peakRssMB),
      peakRssMBAt1000: Math.round(large.peakRssMB),
      rssRatio1000Over100: Math.round((large.peakRssMB / equalVolume.peakRssMB) * 100) / 100,
      peakRssMBAt100Over10Rounds: Math.round(small.peakRssMB),
      rssRatio1000Over100At10Rounds: Math.round((large.peakRssMB / small.peakRssMB) * 100) / 100,
      rssGrowthKBPerAgent: Math.round(growthKBPerAgent * 10) / 10,
      endToEndUpdateMBpsAt1000: Math.round(large.endToEndMBps),
      roundLatencyMsMedianAt100: Math.round(percentile([...small.roundSeconds].sort((a, b) => a - b), 0.5) * 1000),
    };
    ctx.log(`round latency (1,000 agents): median ${figures.roundLatencyMsMedian} ms, p95 ${figures.roundLatencyMsP95} ms`);
    ctx.log(`aggregation throughput: ${figures.aggregationMBps} MB/s of update bytes (validate + accumulate); end to end incl. receive + SQLite: ${figures.endToEndUpdateMBpsAt1000} MB/s`);
    const flags = coordinatorNodeFlags.length > 0 ? ` (node ${coordinatorNodeFlags.join(' ')})` : '';
    ctx.log(`coordinator peak RSS, ${UPDATES.toLocaleString('en')} updates each: ${equalVolume.peakRssMB.toFixed(1)} MB at 100 agents (${equalVolume.rounds} rounds), ${large.peakRssMB.toFixed(1)} MB at 1,000 agents (${large.rounds} rounds)${flags}`);
    ctx.log(`  100 agents x ${small.rounds} rounds (${(small.roundSeconds.reduce((a, b) => a + b, 0)).toFixed(1)}s of rounds): ${small.peakRssMB.toFixed(1)} MB, x${figures.rssRatio1000Over100At10Rounds.toFixed(2)}`);
    ctx.log(`coordinator young generation: ${equalVolume.newSpaceMB} MiB at 100 agents, ${large.newSpaceMB} MiB at 1,000 agents`);
    ctx.log(`flatness: x${figures.rssRatio1000Over100.toFixed(2)} from 100 to 1,000 agents at equal update volume, ${figures.rssGrowthKBPerAgent.toFixed(1)} KB of peak RSS per added agent`);
    const target = (name: string, value: number, ok: boolean, bar: string): void => ctx.log(`  ${name.padEnd(28)} ${String(value).padStart(7)}   target ${bar} ${ok ? 'ok' : 'MISSED'}`);
    target('endToEndUpdateMBpsAt1000', figures.endToEndUpdateMBpsAt1000, figures.endToEndUpdateMBpsAt1000 >= 300, '>= 300');
    target('aggregationMBps', figures.aggregationMBps, figures.aggregationMBps >= 2000, '>= 2000');
    target('roundLatencyMsMedian', figures.roundLatencyMsMedian, figures.roundLatencyMsMedian <= 1500, '<= 1500');
    target('rssRatio1000Over100', figures.rssRatio1000Over100, figures.rssRatio1000Over100 <= 1.15, '<= 1.15');
    return figures;
  },
};

export default bench;
