import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import { autoTrainingThreads, MAX_TRAINING_THREADS, parseThreadsRequest, trainingThreads } from '../../ml/threads.js';

const dist = path.resolve(import.meta.dirname, '../../dist/ml');
const url = (file: string): string => pathToFileURL(path.join(dist, file)).href;

/** Trains a few MLP steps on the synthetic set with `threads` (from the set's rows, then from built batches with their logits) and reports the backend's threads, the losses (and logit checksums) and a weight checksum. */
const trainScript = (threads: number | 'auto', parallelism = 'data'): string => `
  const { initBackend } = await import(${JSON.stringify(url('backend.js'))});
  const { syntheticDataset } = await import(${JSON.stringify(url('datasets/synthetic.js'))});
  const { createModel } = await import(${JSON.stringify(url('models.js'))});
  const { Trainer } = await import(${JSON.stringify(url('trainer.js'))});
  const { getFlatWeights } = await import(${JSON.stringify(url('weights.js'))});
  const info = await initBackend({ backend: 'wasm', threads: ${JSON.stringify(threads)}, parallelism: ${JSON.stringify(parallelism)} });
  const ds = syntheticDataset({ trainCount: 256, testCount: 10 });
  const model = createModel({ kind: 'mlp', inputShape: ds.inputShape, numClasses: ds.numClasses, seed: 2 });
  const trainer = new Trainer(model, { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale });
  const losses = [];
  for (let s = 0; s < 4; s++) losses.push(trainer.stepOn(ds.train, Int32Array.from({ length: 64 }, (_, i) => s * 64 + i)));
  // Built float batches too, with the logits captured.
  for (let s = 0; s < 2; s++) {
    const b = trainer.batchBuilder.build(ds.train, Int32Array.from({ length: 64 }, (_, i) => 255 - s * 64 - i));
    const r = trainer.stepWithLogits(b.x, b.y, undefined, true);
    b.x.dispose();
    b.y.dispose();
    losses.push(r.loss);
    losses.push(r.logits.reduce((a, v, i) => a + v * ((i % 5) + 1), 0) / 100);
  }
  const w = getFlatWeights(model);
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += w[i] * ((i % 7) + 1);
  const result = { threads: info.threads, parallelism: info.parallelism, stepThreads: trainer.stepPath.threads ?? null, note: info.threadsNote ?? null, losses, sum };
`;

interface TrainResult { threads: number; parallelism: string; stepThreads: number | null; note: string | null; losses: number[]; sum: number }

/** Data-parallel steps sum the threads' gradients in another order than one thread does: equal within float rounding. */
function expectClose(a: TrainResult, b: TrainResult): void {
  expect(a.losses.length).toBe(b.losses.length);
  a.losses.forEach((l, i) => expect(Math.abs(l - b.losses[i]!)).toBeLessThan(1e-5));
  expect(Math.abs(a.sum - b.sum)).toBeLessThan(1e-4 * Math.max(1, Math.abs(b.sum)));
}

function inWorker(threads: number | 'auto', parallelism = 'data'): Promise<{ result: TrainResult; exitCode: number }> {
  const code = `(async () => { ${trainScript(threads, parallelism)} require('node:worker_threads').parentPort.postMessage(result); })()`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    let result: TrainResult | undefined;
    worker.on('message', (m: TrainResult) => { result = m; });
    worker.on('error', reject);
    // No terminate(): the worker must end by itself once its work is done.
    worker.on('exit', (exitCode) => (result === undefined ? reject(new Error(`worker exited ${exitCode} without a result`)) : resolve({ result, exitCode })));
  });
}

/** Trains in a child process: from \`node -e\` code, or (with node flags) from a script file, as \`node --flag strata ...\` runs. */
function inProcess(threads: number | 'auto', parallelism = 'data', nodeFlags: string[] = []): { result: TrainResult; status: number | null } {
  const code = `${trainScript(threads, parallelism)} console.log(JSON.stringify(result));`;
  let args = ['--input-type=module', '-e', code];
  let dir: string | undefined;
  if (nodeFlags.length > 0) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'strata-threads-'));
    writeFileSync(path.join(dir, 'train.mjs'), code);
    args = [...nodeFlags, path.join(dir, 'train.mjs')];
  }
  try {
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
    return { result: JSON.parse(r.stdout.trim().split('\n').at(-1) ?? 'null') as TrainResult, status: r.status };
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

describe('training threads', () => {
  it('parses --threads / STRATA_THREADS', () => {
    expect(parseThreadsRequest(undefined)).toBe('auto');
    expect(parseThreadsRequest('auto')).toBe('auto');
    expect(parseThreadsRequest('3')).toBe(3);
    expect(parseThreadsRequest(64)).toBe(8);
    for (const bad of ['0', '-1', 'two', '1.5']) {
      expect(() => parseThreadsRequest(bad, 'STRATA_THREADS')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option: 'STRATA_THREADS' }) }));
    }
  });

  it('counts the other busy threads of a process', () => {
    expect(trainingThreads({ cores: 4 })).toBe(4);
    expect(trainingThreads({ cores: 4, busyThreads: 1 })).toBe(3);
    expect(trainingThreads({ cores: 2, busyThreads: 2 })).toBe(1);
    expect(trainingThreads({ cores: 2, busyThreads: 5 })).toBe(1);
    expect(trainingThreads({ cores: 32 })).toBe(8);
    expect(trainingThreads({ cores: 6, busyThreads: 1.5 })).toBe(4);
    expect(() => trainingThreads({ busyThreads: -1 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
  });

  it("'auto' leaves out the cores the machine is already busy with, and says so", () => {
    const a = autoTrainingThreads();
    expect(a.threads).toBe(Math.max(1, Math.min(MAX_TRAINING_THREADS, a.cores - Math.floor(a.loadAverage))));
    expect(a.note === undefined).toBe(a.threads === Math.min(a.cores, MAX_TRAINING_THREADS));
  });

  it("'auto' also leaves the process's own busy threads (a swap worker) their cores", () => {
    const a = autoTrainingThreads({ busyThreads: 1 });
    expect(a.threads).toBe(Math.max(1, Math.min(MAX_TRAINING_THREADS, a.cores - Math.floor(a.loadAverage) - 1)));
    if (a.threads < Math.min(a.cores, MAX_TRAINING_THREADS)) expect(a.note).toContain('busy thread(s) of its own');
  });

  it('a worker thread trains with 1 thread (the default there) and with 2 data-parallel threads, the same bits on every run and one thread\'s within float rounding, and exits by itself', async () => {
    const auto = await inWorker('auto');
    const one = await inWorker(1);
    const two = await inWorker(2);
    const again = await inWorker(2);
    expect(auto.result.threads).toBe(1);
    expect(one.result).toMatchObject({ threads: 1, parallelism: 'none', stepThreads: 1 });
    expect(two.result).toMatchObject({ threads: 2, parallelism: 'data', stepThreads: 2, note: null });
    for (const r of [auto, one, two, again]) expect(r.exitCode).toBe(0);
    expect(again.result.losses).toEqual(two.result.losses);
    expect(again.result.sum).toBe(two.result.sum);
    expectClose(two.result, one.result);
  });

  it('a process exits by itself with its helper threads; XNNPACK\'s intra-op pool gives one thread\'s bits', () => {
    const one = inProcess(1);
    const two = inProcess(2);
    const intra = inProcess(2, 'intra-op');
    for (const r of [one, two, intra]) expect(r.status).toBe(0);
    expect(two.result).toMatchObject({ threads: 2, parallelism: 'data', stepThreads: 2, note: null });
    expectClose(two.result, one.result);
    expect(intra.result).toMatchObject({ threads: 2, parallelism: 'intra-op', stepThreads: 1 });
    expect(intra.result.losses).toEqual(one.result.losses);
    expect(intra.result.sum).toBe(one.result.sum);
  });

  it('helpers start under V8 flags, which a worker\'s own execArgv refuses (node --stack-trace-limit=20 --trace-gc ...)', () => {
    const flagged = inProcess(2, 'data', ['--stack-trace-limit=20', '--max-semi-space-size=8']);
    expect(flagged.status).toBe(0);
    expect(flagged.result).toMatchObject({ threads: 2, parallelism: 'data', stepThreads: 2, note: null });
  });

  it('an unknown parallelism is a coded error', async () => {
    await expect(initBackend({ backend: 'wasm', threads: 2, parallelism: 'rows' })).rejects.toMatchObject({ code: 'STRATA_ERR_BAD_OPTION' });
  });
});
