/**
 * The simulation stands for the deployment: the same small federation run
 * as a real coordinator with real agent processes on loopback, and as
 * `strata simulate` with the same seed, data deal, profiles, strategy and
 * training config, ends every round with the same global model.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { ProcessGroup, StrataProcess, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-sim-eq-'));
const group = new ProcessGroup();

afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

const PROFILES = ['raspberry-pi-4', 'phone-midrange', 'jetson-nano-5w', 'jetson-tx2'];
const SEED = 11;

interface Federation {
  name: string;
  clients: number;
  perRound: number;
  rounds: number;
  strategy: 'fedavg' | 'fedprox';
  method: 'finetune' | 'er';
  /** `--cl`: class-incremental streams (tasks x rounds per task = rounds). */
  tasks?: number;
}

/** The settings both sides share, spelled as each command takes them. */
function shared(f: Federation): { coordinator: string[]; agent: string[]; simulate: string[] } {
  const training = ['--epochs', '1', '--batch', '16', '--optimizer', 'adam', '--lr', '0.003', '--method', f.method, '--replay', '1', '--seed', String(SEED)];
  const strategy = ['--strategy', f.strategy, ...(f.strategy === 'fedprox' ? ['--mu', '0.05'] : [])];
  // CarM with synchronous swaps: reads and writes inline, so a device's run does not hang on thread timing.
  const memory = ['--memory', '60', '--swap', 'sync', '--swap-ratio', '0.5'];
  return {
    coordinator: [...training, ...strategy, '--per-round', String(f.perRound), '--min-clients', String(f.clients), '--over-commit', '1', '--rounds', String(f.rounds)],
    agent: [...memory, '--seed', String(SEED), '--partition', 'iid',
      ...(f.tasks !== undefined ? ['--dataset', 'split-synthetic', '--tasks', String(f.tasks), '--rounds-per-task', String(f.rounds / f.tasks)] : ['--dataset', 'synthetic', '--samples-per-round', 'whole'])],
    simulate: [...training, ...strategy, ...memory, '--clients', String(f.clients), '--per-round', String(f.perRound), '--min-clients', String(f.clients),
      '--over-commit', '1', '--rounds', String(f.rounds), '--partition', 'iid', '--dataset', 'synthetic', ...(f.tasks !== undefined ? ['--cl', '--tasks', String(f.tasks)] : []),
      '--profiles', PROFILES.slice(0, f.clients).join(','), '--no-dropouts', '--budget', 'off', '--workers', '2'],
  };
}

async function deployment(f: Federation): Promise<{ db: string; selected: string[][] }> {
  const s = shared(f);
  const port = await freePort();
  const db = path.join(dir, `${f.name}-coordinator.db`);
  const coordinator = group.start(`${f.name}-coordinator`, [
    'coordinator', '--port', String(port), '--db', db, '--out', path.join(dir, `${f.name}-coordinator`), '--dataset', 'synthetic', '--model', 'mlp',
    '--deadline', '600', '--heartbeat', '5000', ...s.coordinator,
  ], 'debug');
  const agents: StrataProcess[] = [];
  for (let i = 0; i < f.clients; i++) {
    agents.push(group.start(`${f.name}-c${i}`, [
      'agent', '--url', `ws://127.0.0.1:${port}`, '--agent-id', `c${i}`, '--token', 't', '--profile', PROFILES[i]!, '--shard', `${i}/${f.clients}`,
      '--db', path.join(dir, `${f.name}-c${i}.sqlite`), '--out', path.join(dir, `${f.name}-c${i}`), '--reconnect-max', '1', ...s.agent,
    ]));
  }
  const { code } = await coordinator.exited;
  expect(code).toBe(0);
  await Promise.all(agents.map((a) => a.kill('SIGTERM')));
  return { db, selected: selectedPerRound(db) };
}

/** Who trained each round: the update log (over-commit 1, no dropouts: everyone selected delivers). */
function selectedPerRound(db: string): string[][] {
  const store = CoordinatorStore.open(db);
  try {
    const out: string[][] = [];
    for (const u of store.updateLog()) (out[u.assignedRound - 1] ??= []).push(u.agentId);
    return out.map((x) => x.sort());
  } finally {
    store.close();
  }
}

async function simulation(f: Federation): Promise<{ db: string; selected: string[][] }> {
  const out = path.join(dir, `${f.name}-simulate`);
  const p = group.start(`${f.name}-simulate`, ['simulate', '--out', out, '--json', ...shared(f).simulate]);
  const { code } = await p.exited;
  expect(code, p.stdout).toBe(0);
  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { rounds: { clients: { clientId: number }[] }[]; storeFile: string };
  // The report's own account of the selection agrees with its store's.
  expect(report.rounds.map((r) => r.clients.map((c) => `c${c.clientId}`).sort())).toEqual(selectedPerRound(report.storeFile));
  return { db: report.storeFile, selected: selectedPerRound(report.storeFile) };
}

/** Both runs' global model after every round: max |weight difference| and test accuracy. Returns the largest difference seen. */
function compareModels(a: string, b: string, rounds: number): number {
  let worst = 0;
  const sa = CoordinatorStore.open(a);
  const sb = CoordinatorStore.open(b);
  try {
    for (let v = 0; v <= rounds; v++) {
      const ma = sa.model(v);
      const mb = sb.model(v);
      expect(ma, `model ${v} (deployment)`).toBeDefined();
      expect(mb, `model ${v} (simulation)`).toBeDefined();
      expect(ma!.layoutHash).toBe(mb!.layoutHash);
      let maxDiff = 0;
      for (let i = 0; i < ma!.weights.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ma!.weights[i]! - mb!.weights[i]!));
      expect(maxDiff, `round ${v}: max |weight difference|`).toBeLessThanOrEqual(1e-4);
      worst = Math.max(worst, maxDiff);
      if (v > 0) {
        expect(ma!.accuracy).not.toBeNull();
        expect(ma!.accuracy!.toFixed(3), `round ${v}: test accuracy`).toBe(mb!.accuracy!.toFixed(3));
        // The round really trained: the model moved, and it scores above chance.
        let moved = 0;
        const prev = sa.model(v - 1)!.weights;
        for (let i = 0; i < prev.length; i++) moved = Math.max(moved, Math.abs(ma!.weights[i]! - prev[i]!));
        expect(moved).toBeGreaterThan(1e-3);
        expect(ma!.accuracy!).toBeGreaterThan(0.2);
      }
    }
    expect(sa.model(rounds + 1)).toBeUndefined();
  } finally {
    sa.close();
    sb.close();
  }
  return worst;
}

describe.runIf(e2eEnabled)('a simulation is the deployment it stands for', () => {
  const cases: Federation[] = [
    { name: 'fedavg', clients: 3, perRound: 3, rounds: 3, strategy: 'fedavg', method: 'finetune' },
    { name: 'fedprox', clients: 3, perRound: 3, rounds: 3, strategy: 'fedprox', method: 'finetune' },
    { name: 'cl-er-carm', clients: 3, perRound: 3, rounds: 4, strategy: 'fedavg', method: 'er', tasks: 2 },
  ];
  for (const f of cases) {
    it(`${f.name}: a coordinator with ${f.clients} agent processes and strata simulate end every round with the same model`, async () => {
      const [dep, sim] = await Promise.all([deployment(f), simulation(f)]);
      compareModels(dep.db, sim.db, f.rounds);
      for (const s of [dep.selected, sim.selected]) for (const r of s) expect(r).toHaveLength(f.clients);
      if (f.method === 'er') {
        // The memory hierarchy did its work on both sides: every streamed sample stored, memory replayed, the same way.
        const agent = JSON.parse(readFileSync(path.join(dir, `${f.name}-c0`, 'report.json'), 'utf8')) as {
          rounds: { replaySamples: number; device: { task: number } }[]; memory: { storedSamples: number; swap: { applied: number } | null };
        };
        expect(agent.memory.storedSamples).toBeGreaterThan(0);
        expect(agent.rounds.at(-1)!.replaySamples).toBeGreaterThan(0);
        expect(agent.rounds.map((r) => r.device.task)).toEqual([0, 0, 1, 1]);
        expect(agent.memory.swap?.applied ?? 0).toBeGreaterThan(0);
        const report = JSON.parse(readFileSync(path.join(dir, `${f.name}-simulate`, 'report.json'), 'utf8')) as {
          rounds: { clients: { clientId: number; cl?: { storedSamples: number; replaySamples: number } }[] }[];
        };
        const c0 = report.rounds.map((r) => r.clients.find((c) => c.clientId === 0)!.cl!);
        expect(c0.at(-1)!.storedSamples).toBe(agent.memory.storedSamples);
        expect(c0.map((c) => c.replaySamples)).toEqual(agent.rounds.map((r) => r.replaySamples));
      }
    });
  }

  it('K < N: the same clients are selected in every round', async () => {
    const f: Federation = { name: 'k-of-n', clients: 4, perRound: 2, rounds: 3, strategy: 'fedavg', method: 'finetune' };
    const [dep, sim] = await Promise.all([deployment(f), simulation(f)]);
    expect(dep.selected).toHaveLength(f.rounds);
    expect(sim.selected).toEqual(dep.selected);
    compareModels(dep.db, sim.db, f.rounds);
  });
});
