/**
 * The examples in examples/ (typed programs that import only the public
 * API: `strata`, `strata/coordinator`, `strata/device`, `strata/simulation`,
 * `strata/protocol`), compiled by `npm test` into dist-examples/ and run here
 * as child processes at small sizes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const examples = path.join(root, 'dist-examples');

async function example(file: string, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [path.join(examples, file), ...args], {
    cwd: root, env: { ...process.env, STRATA_THREADS: '1' }, maxBuffer: 64 * 2 ** 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'strata-example-'));

describe('examples', () => {
  it('image-federation: your own CNN over an image folder, a coordinator and two agents with tokens', async () => {
    const out = await example('image-federation.js', tmp());
    expect(out).toMatchObject({ images: 1500, classes: 10, rounds: 3, trained: [3, 3] });
    expect(out['accuracy']).toBeGreaterThan(0.8);
  }, 120_000);

  it('custom-strategy: a FederatedStrategy written from scratch (FedAvgM) runs in the round engine, picks its clients, and learns', async () => {
    const out = await example('custom-strategy.js', tmp());
    expect(out['strategy']).toEqual({ name: 'fedavgm', mode: 'sync', settings: { serverLearningRate: 1, momentum: 0.5 } });
    const rounds = out['rounds'] as { round: number; accuracy: number; participants: number[] }[];
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const r of rounds) expect(r.participants).toHaveLength(3);
    expect(out['finalAccuracy']).toBeGreaterThan(0.7);
  }, 120_000);

  it('custom-cl-method: a client app\'s own CL method runs in every virtual client under --cl (library and CLI)', async () => {
    const out = await example('custom-cl-method/run.js', tmp());
    expect(out).toMatchObject({ method: 'replay-ramp', rounds: 4 });
    const cl = out['cl'] as { tasks: { task: number; accuracySeen: number }[] };
    expect(cl.tasks.map((t) => t.task)).toEqual([0, 1]);
    const { stdout } = await run(process.execPath, [
      path.join(root, 'dist/cli/strata.js'), 'simulate', '--cl', '--client-app', path.join(examples, 'custom-cl-method/app.js'), '--method', 'replay-ramp',
      '--dataset', 'synthetic', '--tasks', '2', '--clients', '4', '--per-round', '2', '--rounds', '4', '--budget', 'off', '--workers', '1',
      '--eval-samples', '500', '--out', tmp(), '--json',
    ], { cwd: root, env: { ...process.env, STRATA_THREADS: '1', STRATA_LOG_LEVEL: 'warn' }, maxBuffer: 64 * 2 ** 20 });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { config: { clMethod: string }; rounds: unknown[]; clients: { replaySamples?: number }[] };
    expect(report.config.clMethod).toBe('replay-ramp');
    expect(report.rounds).toHaveLength(4);
  }, 120_000);

  it('live-device: ingest() feeds an agent; each round learns what arrived, new classes start a task', async () => {
    const out = await example('live-device.js', tmp());
    expect(out['ingested']).toBe(1100);
    expect(out['rounds']).toEqual([{ round: 1, samples: 400, task: 0 }, { round: 2, samples: 400, task: 1 }, { round: 3, samples: 300, task: 1 }]);
    expect(out['accuracy']).toBeGreaterThan(0.5);
  }, 120_000);
});
