import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../../testing/free-port.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { deterministicAgent, waitFor } from './helpers.js';
import type { LogEvent } from '../../common/log-events.js';

const root = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-crash-'));
const db = path.join(dir, 'coordinator.db');
const tokensFile = path.join(dir, 'tokens');
const children: ChildProcess[] = [];
let agents: AgentConnection[] = [];

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface LogLine { event?: LogEvent; roundId?: number; accepted?: number; replayed?: number }

function startChild(port: number, lines: LogLine[]): ChildProcess {
  const child = spawn(process.execPath, [
    path.join(root, 'dist/cli/strata.js'), 'coordinator', '--port', String(port), '--db', db, '--tokens', tokensFile,
    '--dataset', 'synthetic', '--model', 'mlp', '--rounds', '4', '--per-round', '3', '--over-commit', '1', '--deadline', '30',
    '--heartbeat', '1000', '--out', path.join(dir, 'out'), '--backend', 'cpu',
  ], { cwd: root, env: { ...process.env, STRATA_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let buf = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { lines.push(JSON.parse(line) as LogLine); } catch { /* not a log line */ }
    }
  });
  child.stdout!.resume();
  return child;
}

describe('crash recovery', () => {
  it('kill -9 mid-round; the restarted coordinator resumes the round; no accepted update lost or applied twice', async () => {
    writeFileSync(tokensFile, '# test agents\na1 t-a1\na2 t-a2\na3 t-a3  # the slow one\n');
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const spec = [
      { id: 'a1', samples: 10, delayMs: 30, value: (r: number) => 0.01 * r },
      { id: 'a2', samples: 30, delayMs: 100, value: (r: number) => -0.02 * r },
      // Slow enough to still be training after the coordinator has evaluated the last model (the next round opens before that evaluation).
      { id: 'a3', samples: 60, delayMs: 4000, value: (r: number) => 0.005 },
    ];
    const first: LogLine[] = [];
    const child1 = startChild(port, first);
    agents = spec.map((s) => deterministicAgent(url, s.id, { samples: s.samples, value: s.value, delayMs: s.delayMs }));
    // Mid-round 2: two of its three updates accepted (and durable), the slow one still training.
    await waitFor(() => first.some((l) => l.event === 'coordinator.update-accepted' && l.roundId === 2 && l.accepted === 2), 60_000, 'round 2 half done');
    child1.kill('SIGKILL');
    await new Promise((r) => child1.once('exit', r));

    const second: LogLine[] = [];
    const child2 = startChild(port, second);
    const code = await new Promise<number | null>((r) => child2.once('exit', r));
    expect(code).toBe(0);
    const resumed = second.find((l) => l.event === 'coordinator.round-resumed');
    expect(resumed).toMatchObject({ roundId: 2, replayed: 2 });

    const store = CoordinatorStore.open(db);
    try {
      const rounds = store.rounds();
      expect(rounds.map((r) => [r.roundId, r.status])).toEqual([[1, 'completed'], [2, 'completed'], [3, 'completed'], [4, 'completed']]);
      expect(rounds[1]!.resumed).toBe(1);
      const log = store.updateLog();
      // Every (round, agent) exactly once, all applied, each in the version its round produced.
      expect(log).toHaveLength(12);
      expect(new Set(log.map((u) => `${u.assignedRound}/${u.agentId}`)).size).toBe(12);
      for (const u of log) expect(u).toMatchObject({ status: 'applied', appliedVersion: u.roundId });
      // Every accept the agents were told about is in the log.
      for (const a of agents) {
        for (const ack of a.acks.filter((k) => k.accepted)) expect(log.some((u) => u.assignedRound === ack.roundId)).toBe(true);
      }
      // The model moved by exactly one weighted mean per round: an update applied twice (or lost) would show here.
      for (let v = 1; v <= 4; v++) {
        const prev = store.model(v - 1)!.weights;
        const cur = store.model(v)!.weights;
        expect(store.model(v)!.applied).toBe(3);
        const expected = spec.reduce((s, a) => s + a.samples * a.value(v), 0) / 100;
        for (let i = 0; i < cur.length; i += 4099) expect(cur[i]! - prev[i]!).toBeCloseTo(expected, 5);
        expect(store.model(v)!.accuracy).not.toBeNull();
      }
    } finally {
      store.close();
    }
  });
});
