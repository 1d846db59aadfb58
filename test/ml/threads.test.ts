import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { autoTrainingThreads, MAX_TRAINING_THREADS, parseThreadsRequest, trainingThreads } from '../../ml/threads.js';

const dist = path.resolve(import.meta.dirname, '../../dist/ml');
const url = (file: string): string => pathToFileURL(path.join(dist, file)).href;

/** Trains a few MLP steps on the synthetic set with `threads` and reports the backend's threads, the losses and a weight checksum. */
const trainScript = (threads: number | 'auto'): string => `
  const { initBackend } = await import(${JSON.stringify(url('backend.js'))});
  const { syntheticDataset } = await import(${JSON.stringify(url('datasets/synthetic.js'))});
  const { createModel } = await import(${JSON.stringify(url('models.js'))});
  const { Trainer } = await import(${JSON.stringify(url('trainer.js'))});
  const { getFlatWeights } = await import(${JSON.stringify(url('weights.js'))});
  const info = await initBackend({ backend: 'wasm', threads: ${JSON.stringify(threads)} });
  const ds = syntheticDataset({ trainCount: 256, testCount: 10 });
  const model = createModel({ kind: 'mlp', inputShape: ds.inputShape, numClasses: ds.numClasses, seed: 2 });
  const trainer = new Trainer(model, { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale });
  const losses = [];
  for (let s = 0; s < 4; s++) losses.push(trainer.stepOn(ds.train, Int32Array.from({ length: 64 }, (_, i) => s * 64 + i)));
  const w = getFlatWeights(model);
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += w[i] * ((i % 7) + 1);
  const result = { threads: info.threads, note: info.threadsNote ?? null, losses, sum };
`;

interface TrainResult { threads: number; note: string | null; losses: number[]; sum: number }

function inWorker(threads: number | 'auto'): Promise<{ result: TrainResult; exitCode: number }> {
  const code = `(async () => { ${trainScript(threads)} require('node:worker_threads').parentPort.postMessage(result); })()`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    let result: TrainResult | undefined;
    worker.on('message', (m: TrainResult) => { result = m; });
    worker.on('error', reject);
    // No terminate(): the worker must end by itself once its work is done.
    worker.on('exit', (exitCode) => (result === undefined ? reject(new Error(`worker exited ${exitCode} without a result`)) : resolve({ result, exitCode })));
  });
}

function inProcess(threads: number | 'auto'): { result: TrainResult; status: number | null } {
  const code = `${trainScript(threads)} console.log(JSON.stringify(result));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  return { result: JSON.parse(r.stdout.trim().split('\n').at(-1) ?? 'null') as TrainResult, status: r.status };
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

  it('a worker thread trains with 1 thread (the default there) and with 2, to the same bits, and exits by itself', async () => {
    const auto = await inWorker('auto');
    const one = await inWorker(1);
    const two = await inWorker(2);
    expect(auto.result.threads).toBe(1);
    expect(one.result.threads).toBe(1);
    expect(two.result).toMatchObject({ threads: 2, note: null });
    for (const r of [auto, one, two]) expect(r.exitCode).toBe(0);
    expect(two.result.losses).toEqual(one.result.losses);
    expect(two.result.sum).toBe(one.result.sum);
  });

  it('a process on the threaded build exits by itself with the same results', () => {
    const one = inProcess(1);
    const two = inProcess(2);
    expect(one.status).toBe(0);
    expect(two.status).toBe(0);
    expect(two.result.threads).toBe(2);
    expect(two.result.losses).toEqual(one.result.losses);
    expect(two.result.sum).toBe(one.result.sum);
  });
});
