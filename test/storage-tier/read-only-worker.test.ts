import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampleStore } from '../../storage-tier/index.js';
import { samplesOfClasses, tempDir, type TempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Threads run JavaScript: the worker loads the compiled store, which `npm test` builds first.
const distIndex = pathToFileURL(path.resolve(here, '../../dist/storage-tier/index.js')).href;

let tmp: TempDir;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.remove());

const workerSource = `
  const { parentPort, workerData } = require('node:worker_threads');
  import(workerData.distIndex).then(({ SampleStore }) => {
    const store = SampleStore.openReadOnly(workerData.file);
    parentPort.on('message', (labels) => {
      const got = store.fetchManyRandomOfClasses(labels);
      parentPort.postMessage({ labels: got.map((s) => s && s.label), count: store.count() });
    });
    parentPort.postMessage('ready');
  });
`;

describe('read-only store in a worker thread', () => {
  it('fetches same-class samples through its own connection while the writer ingests', async () => {
    const file = tmp.file('worker.db');
    const writer = SampleStore.open(file);
    writer.ingest(samplesOfClasses(0, [0, 1], 20));
    const worker = new Worker(workerSource, { eval: true, workerData: { file, distIndex } });
    try {
      const replies: Array<{ labels: Array<number | null>; count: number }> = [];
      const next = (): Promise<unknown> => new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(await next()).toBe('ready');
      worker.postMessage([0, 1, 1, 0]);
      replies.push((await next()) as (typeof replies)[number]);
      writer.ingest(samplesOfClasses(1, [2, 3], 20));
      worker.postMessage([3, 2, 0, 5]);
      replies.push((await next()) as (typeof replies)[number]);
      expect(replies).toEqual([
        { labels: [0, 1, 1, 0], count: 40 },
        { labels: [3, 2, 0, null], count: 80 },
      ]);
    } finally {
      await worker.terminate();
      writer.close();
    }
  });
});
