/**
 * `strata agent --inbox DIR`: a device fed live from files dropped into a
 * folder, with real agent and coordinator processes and real SQLite files.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { loadDataset } from '../../ml/datasets/load-dataset.js';
import { ProcessGroup, coordinatorArgs, e2eEnabled, freePort } from './processes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-inbox-'));
const group = new ProcessGroup();
afterAll(async () => {
  await group.killAll();
  rmSync(dir, { recursive: true, force: true });
});

const mnist = await loadDataset('mnist');
const F = mnist.featureSize;

/** MNIST training rows as a CSV file (header: label, p0..p783), written elsewhere and moved in. */
function dropCsv(inbox: string, name: string, rows: number[]): void {
  const header = ['label', ...Array.from({ length: F }, (_, i) => `p${i}`)].join(',');
  const lines = rows.map((r) => [mnist.train.labels[r], ...mnist.train.features.subarray(r * F, (r + 1) * F)].join(','));
  const tmp = path.join(dir, `${name}.part`);
  writeFileSync(tmp, `${header}\n${lines.join('\n')}\n`);
  renameSync(tmp, path.join(inbox, name));
}

function rowsOfClasses(classes: number[], n: number, skip = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < mnist.train.count && out.length < n; i++) if (classes.includes(mnist.train.labels[i]!) && i >= skip) out.push(i);
  return out;
}

function agentArgs(port: number, id: string, db: string, inbox: string, out: string): string[] {
  return [
    'agent', '--url', `ws://127.0.0.1:${port}`, '--agent-id', id, '--token', 't', '--profile', 'raspberry-pi-4', '--dataset', 'mnist',
    '--inbox', inbox, '--db', db, '--out', out, '--reconnect-max', '1',
  ];
}

describe.skipIf(!e2eEnabled)('strata agent --inbox', () => {
  it('kill -9 mid-ingest: every sample whose file was removed is in the store', async () => {
    const inbox = path.join(dir, 'inbox-kill');
    mkdirSync(inbox);
    const files = 120;
    const perFile = 40;
    for (let k = 0; k < files; k++) dropCsv(inbox, `batch-${String(k).padStart(4, '0')}.csv`, Array.from({ length: perFile }, (_, i) => k * perFile + i));
    const db = path.join(dir, 'kill.sqlite');
    // No coordinator listens: the agent takes in its inbox while it retries the connection.
    const agent = group.start('agent-kill', agentArgs(await freePort(), 'live-kill', db, inbox, path.join(dir, 'out-kill')), 'warn');
    const deadline = Date.now() + 60_000;
    while (readdirSync(inbox).filter((f) => f.endsWith('.csv')).length > files - 10) {
      if (!agent.running) throw new Error(`agent exited: ${agent.lines.map((l) => l.msg).join('; ')}`);
      if (Date.now() > deadline) throw new Error('the agent took in nothing');
      await new Promise((r) => setTimeout(r, 5));
    }
    await agent.kill('SIGKILL');
    const left = new Set(readdirSync(inbox));
    const removed = Array.from({ length: files }, (_, k) => `batch-${String(k).padStart(4, '0')}.csv`).filter((f) => !left.has(f));
    expect(removed.length).toBeGreaterThanOrEqual(10);
    expect(removed.length).toBeLessThan(files);
    expect(existsSync(path.join(inbox, 'rejected'))).toBe(false);
    const store = new Database(db, { readonly: true });
    const rows = store.prepare('SELECT source, label, features FROM arrivals').all() as { source: string; label: number; features: Buffer }[];
    store.close();
    const bySource = new Map(rows.map((r) => [r.source, r]));
    for (const f of removed) {
      const k = Number(f.slice(6, 10));
      for (let i = 0; i < perFile; i++) {
        const row = bySource.get(`${f}:${i + 2}`);
        expect(row, `${f} row ${i + 2}`).toBeDefined();
        const r = k * perFile + i;
        expect(row!.label).toBe(mnist.train.labels[r]);
        expect(Buffer.compare(row!.features, Buffer.from(mnist.train.features.subarray(r * F, (r + 1) * F)))).toBe(0);
      }
    }
  }, 90_000);

  it('learns each round from what arrived since the last; new classes are task boundaries; a malformed file is rejected with a code', async () => {
    const port = await freePort();
    const coordinator = group.start('coordinator', coordinatorArgs({
      port, db: path.join(dir, 'coord.sqlite'), out: path.join(dir, 'out-coord'), rounds: 3, perRound: 1, deadlineSeconds: 60,
      extra: ['--min-clients', '1'],
    }));
    await coordinator.waitLog((l) => l.event === 'coordinator.listening', 30_000, 'listening');
    const inbox = path.join(dir, 'inbox-live');
    mkdirSync(inbox);
    dropCsv(inbox, 'a-task0.csv', rowsOfClasses([0, 1], 300));
    writeFileSync(path.join(inbox, 'broken.csv'), 'label,p0\n3,17\n');
    const agent = group.start('agent-live', [...agentArgs(port, 'live-0', path.join(dir, 'live.sqlite'), inbox, path.join(dir, 'out-live')), '--json']);
    await agent.waitLog((l) => l.event === 'agent.round-trained' && l.roundId === 1, 60_000, 'round 1');
    dropCsv(inbox, 'b-task1.csv', rowsOfClasses([2, 3], 300));
    await agent.waitLog((l) => l.event === 'agent.round-trained' && l.roundId === 2, 60_000, 'round 2');
    dropCsv(inbox, 'c-task1.csv', rowsOfClasses([2, 3], 200, 20_000));
    // Images in a class folder: decoded to the device's input and taken in one by one.
    mkdirSync(path.join(dir, 'png'), { recursive: true });
    mkdirSync(path.join(inbox, '3'));
    for (const r of rowsOfClasses([3], 5, 30_000)) {
      const tmp = path.join(dir, 'png', `${r}.png`);
      await sharp(Buffer.from(mnist.train.features.subarray(r * F, (r + 1) * F)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(tmp);
      renameSync(tmp, path.join(inbox, '3', `${r}.png`));
    }
    await agent.waitLog((l) => l.event === 'agent.round-trained' && l.roundId === 3, 60_000, 'round 3');
    const rejected = agent.lines.find((l) => l.code === 'STRATA_ERR_DATASET_FILE');
    expect(rejected).toMatchObject({ file: path.join(inbox, 'broken.csv'), row: 1 });
    expect(existsSync(path.join(inbox, 'rejected', 'broken.csv'))).toBe(true);
    const trained = agent.lines.filter((l) => l.event === 'agent.round-trained');
    expect(trained.slice(0, 2).map((l) => [l.roundId, l['task'], l['numSamples']])).toEqual([[1, 0, 300], [2, 1, 300]]);
    // Round 3 learns what arrived by then: the CSV file, and the images that came before it started.
    expect(trained[2]).toMatchObject({ roundId: 3, task: 1 });
    expect(trained[2]!['numSamples']).toBeGreaterThanOrEqual(200);
    await coordinator.exited;
    await agent.kill('SIGTERM');
    const report = JSON.parse(agent.stdout.trim().split('\n').at(-1)!) as { live: boolean; ingested: number; inbox: { files: number; samples: number; rejected: number } };
    expect(report).toMatchObject({ live: true, ingested: 805, inbox: { files: 8, samples: 805, rejected: 1 } });
  }, 180_000);
});
