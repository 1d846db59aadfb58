import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EpisodicMemory } from '../../../client-runtime/carm/episodic-memory.js';
import { StreamWriter, type StreamSample, type StreamWriterOptions } from '../../../client-runtime/carm/stream-writer.js';
import { SwapManager } from '../../../client-runtime/carm/swap-manager.js';
import { isStrataError } from '../../../common/strata-error.js';
import { SampleStore } from '../../../storage-tier/index.js';
import { tempDir, type TempDir } from '../../storage-tier/helpers.js';

let tmp: TempDir;
beforeAll(() => {
  tmp = tempDir('strata-stream-writer-test-');
});
afterAll(() => tmp.remove());

/** A 784-byte sample whose bytes say (label, n). */
function sample(task: number, label: number, n: number): StreamSample {
  const features = new Uint8Array(784);
  features[0] = label;
  features[1] = n & 0xff;
  features[2] = (n >> 8) & 0xff;
  return { features, label, task };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return isStrataError(err) ? err.code : `not a StrataError: ${String(err)}`;
  }
  return undefined;
}

function opts(file: string, extra: Partial<StreamWriterOptions> = {}): StreamWriterOptions {
  return { storeFile: file, capacity: 'all', featureSize: 784, featureType: 'uint8', ...extra };
}

describe('StreamWriter', () => {
  it('persists every sample written in small writes, and survives flush/close', async () => {
    const file = tmp.file('all.db');
    const writer = await StreamWriter.start(opts(file));
    // Samples built up front: the figure is the writer's, not the test's.
    const batches: StreamSample[][] = [];
    for (let b = 0; b < 3000; b++) batches.push(Array.from({ length: 10 }, (_, i) => sample(b >> 10, (b * 10 + i) % 10, b * 10 + i)));
    const t = performance.now();
    let writeMs = 0;
    for (const batch of batches) {
      const w = performance.now();
      writer.write(batch);
      writeMs += performance.now() - w;
    }
    const flushed = await writer.flush();
    const seconds = (performance.now() - t) / 1000;
    expect(flushed.stored).toBe(30_000);
    expect(flushed.written).toBe(30_000);
    expect(flushed.countsByClass).toEqual(Object.fromEntries(Array.from({ length: 10 }, (_, c) => [c, 3000])));
    expect(flushed.bytes).toBe(30_000 * 784);
    expect(flushed.fileBytes).toBeGreaterThan(flushed.bytes);
    console.log(`stream writer: ${Math.round(30_000 / seconds)} samples/s committed (30000 in 10-sample writes, ${seconds.toFixed(2)} s; the training thread spent ${writeMs.toFixed(0)} ms in write())`);
    // The rate is printed, not asserted: speed belongs to benchmarks, not to npm test.

    writer.write([sample(3, 7, 30_000)]);
    expect((await writer.flush()).stored).toBe(30_001);
    writer.write([sample(3, 8, 30_001)]);
    await writer.close();
    await writer.close();
    expect(writer.state).toBe('closed');
    expect(await codeOf(() => writer.write([sample(0, 0, 0)]))).toBe('STRATA_ERR_STATE');
    expect(await codeOf(writer.flush())).toBe('STRATA_ERR_STATE');

    // Close committed the last write; the content round-trips.
    const store = SampleStore.openReadOnly(file);
    try {
      expect(store.count()).toBe(30_002);
      for (let i = 0; i < 50; i++) {
        const s = store.fetchRandomOfClass(3)!;
        expect(s.features[0]).toBe(3);
        const n = s.features[1]! | (s.features[2]! << 8);
        expect(n % 10).toBe(3);
        expect(s.task).toBe(Math.floor(n / 10) >> 10);
      }
    } finally {
      store.close();
    }
  });

  it('keeps float32 features and logits', async () => {
    const file = tmp.file('float.db');
    const writer = await StreamWriter.start(opts(file, { featureSize: 4, featureType: 'float32' }));
    writer.write([
      { features: Float32Array.of(0.5, 1, 2, 3), label: 1, task: 0, logits: Float32Array.of(-1, 1) },
      { features: Float32Array.of(4, 5, 6, 7.25), label: 2, task: 0 },
    ]);
    expect((await writer.flush()).stored).toBe(2);
    await writer.close();
    const store = SampleStore.openReadOnly(file);
    try {
      const one = store.fetchRandomOfClass(1)!;
      expect(Array.from(one.features)).toEqual([0.5, 1, 2, 3]);
      expect(Array.from(one.logits!)).toEqual([-1, 1]);
      const two = store.fetchRandomOfClass(2)!;
      expect(Array.from(two.features)).toEqual([4, 5, 6, 7.25]);
      expect(two.logits).toBeNull();
    } finally {
      store.close();
    }
  });

  it('honours the storage budget: N keeps a class-balanced N, none keeps nothing', async () => {
    const capped = await StreamWriter.start(opts(tmp.file('capped.db'), { capacity: 100 }));
    const none = await StreamWriter.start(opts(tmp.file('none.db'), { capacity: 'none' }));
    for (let n = 0; n < 1000; n++) {
      const s = sample(0, n % 4, n);
      capped.write([s]);
      none.write([s]);
    }
    const [c, z] = await Promise.all([capped.flush(), none.flush()]);
    expect(c.stored).toBe(100);
    expect(c.countsByClass).toEqual({ 0: 25, 1: 25, 2: 25, 3: 25 });
    expect(z).toMatchObject({ stored: 0, bytes: 0, countsByClass: {} });
    await Promise.all([capped.close(), none.close()]);
  });

  it('feeds the swap worker: samples written mid-task become swappable after flush', async () => {
    const file = tmp.file('feed.db');
    const writer = await StreamWriter.start(opts(file));
    const memory = new EpisodicMemory({ capacity: 10, featureSize: 784, featureType: 'uint8', numClasses: 2 });
    for (let n = 0; n < 10; n++) memory.observe(sample(0, n % 2, 60_000 + n).features, n % 2, 0);
    const swaps = await SwapManager.start({ mode: 'async', ratio: 1, policy: 'random', storeFile: file, memory });
    try {
      const all = Array.from({ length: 10 }, (_, slot) => ({ slot, label: memory.labelOf(slot), correct: true, entropy: 0 }));
      swaps.afterStep(all, 0);
      await swaps.drain();
      expect(swaps.stats()).toMatchObject({ missed: 10, applied: 0 });
      writer.write(Array.from({ length: 40 }, (_, n) => sample(1, n % 2, n)));
      await writer.flush();
      swaps.afterStep(all, 0);
      await swaps.drain();
      expect(swaps.stats()).toMatchObject({ missed: 10, applied: 10 });
      for (let slot = 0; slot < 10; slot++) expect(memory.taskOf(slot)).toBe(1);
      expect(memory.countsByClass()).toEqual([5, 5]);
    } finally {
      await swaps.close();
      await writer.close();
    }
  });

  it('fails with coded errors: bad options, unopenable or foreign files, bad samples', async () => {
    expect(await codeOf(StreamWriter.start(opts(tmp.file('x.db'), { capacity: 0 })))).toBe('STRATA_ERR_BAD_OPTION');
    expect(await codeOf(StreamWriter.start(opts(tmp.file('x.db'), { featureType: 'int8' as never })))).toBe('STRATA_ERR_BAD_OPTION');
    expect(await codeOf(StreamWriter.start(opts('')))).toBe('STRATA_ERR_BAD_OPTION');
    expect(await codeOf(StreamWriter.start(opts(tmp.file('no/such/dir/x.db'))))).toBe('STRATA_ERR_STORE_OPEN');
    const foreign = tmp.file('foreign.db');
    writeFileSync(foreign, 'definitely not a database '.repeat(50));
    expect(await codeOf(StreamWriter.start(opts(foreign)))).toBe('STRATA_ERR_STORE_NOT_STRATA');
    mkdirSync(tmp.file('a-directory.db'));
    expect(await codeOf(StreamWriter.start(opts(tmp.file('a-directory.db'))))).toBe('STRATA_ERR_STORE_OPEN');

    const writer = await StreamWriter.start(opts(tmp.file('bad-samples.db')));
    try {
      expect(await codeOf(() => writer.write([{ features: new Uint8Array(10), label: 0, task: 0 }]))).toBe('STRATA_ERR_BAD_SAMPLE');
      expect(await codeOf(() => writer.write([{ features: new Float32Array(784), label: 0, task: 0 }]))).toBe('STRATA_ERR_BAD_SAMPLE');
      expect(await codeOf(() => writer.write([{ ...sample(0, 0, 0), label: -1 }]))).toBe('STRATA_ERR_BAD_SAMPLE');
      // A rejected write queues nothing.
      expect((await writer.flush()).stored).toBe(0);
    } finally {
      await writer.close();
    }
  });
});
