import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EpisodicMemory } from '../../../client-runtime/carm/episodic-memory.js';
import { SwapManager, type SwapManagerOptions } from '../../../client-runtime/carm/swap-manager.js';
import type { ReplayedSampleInfo } from '../../../client-runtime/carm/swap-policy.js';
import { isStrataError } from '../../../common/strata-error.js';
import { Rng } from '../../../ml/rng.js';
import { SampleStore, type SampleInput } from '../../../storage-tier/index.js';
import { tempDir, type TempDir } from '../../storage-tier/helpers.js';

const F = 64;
const CLASSES = 5;
/** Byte 0 of every stored sample; EM samples from the stream carry STREAM_TAG. */
const STORE_TAG = 0xaa;
const STREAM_TAG = 0x11;

let tmp: TempDir;
let storeFile: string;
let writer: SampleStore;
const open: SwapManager[] = [];

beforeAll(() => {
  tmp = tempDir('strata-swap-test-');
  storeFile = tmp.file('store.db');
  writer = SampleStore.open(storeFile);
  // 200 stored samples of classes 0..3 (none of class 4), tagged and numbered, with logits.
  const samples: SampleInput[] = [];
  for (let n = 0; n < 200; n++) {
    for (let c = 0; c < CLASSES - 1; c++) {
      const features = new Uint8Array(F);
      features[0] = STORE_TAG;
      features[1] = c;
      features[2] = n;
      samples.push({ task: 1 + (c >> 1), label: c, features, logits: Float32Array.of(c, n, 0, 0, 0) });
    }
  }
  writer.ingest(samples);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

afterAll(() => {
  writer.close();
  tmp.remove();
});

function memoryOf(options: { logits?: boolean; classes?: number } = {}): EpisodicMemory {
  const m = new EpisodicMemory({ capacity: 100, featureSize: F, featureType: 'uint8', numClasses: options.classes ?? CLASSES, logitsSize: options.logits ? 5 : 0, seed: 1 });
  for (let n = 0; m.size < m.capacity; n++) {
    const c = n % (options.classes ?? CLASSES);
    const f = new Uint8Array(F);
    f[0] = STREAM_TAG;
    f[1] = c;
    m.observe(f, c, 0);
  }
  return m;
}

async function start(options: Partial<SwapManagerOptions> & { memory: EpisodicMemory }): Promise<SwapManager> {
  const m = await SwapManager.start({ mode: 'async', ratio: 0.5, policy: 'random', storeFile, seed: 3, ...options });
  open.push(m);
  return m;
}

function replayedOf(memory: EpisodicMemory, n: number, rng: Rng): ReplayedSampleInfo[] {
  return Array.from(memory.sampleSlots(n, rng), (slot) => ({ slot, label: memory.labelOf(slot), correct: rng.next() < 0.5, entropy: rng.next() }));
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isStrataError(err) ? err.code : `not a StrataError: ${String(err)}`;
  }
  return undefined;
}

describe('SwapManager (async)', () => {
  it('keeps the EM class balance while swapping in stored samples of the same class', async () => {
    const memory = memoryOf();
    const before = memory.countsByClass();
    const steps = 400;
    // Room for every request in flight: on a loaded machine the worker can fall far behind, and skipped swaps would
    // leave a slot never swapped in (the count this test checks), which says nothing about class balance.
    const swaps = await start({ memory, ratio: 1, policy: 'dynamic', maxPendingSwaps: steps * 10 });
    const rng = new Rng(4);
    let applied = 0;
    for (let step = 0; step < steps; step++) {
      applied += swaps.applyReady();
      swaps.afterStep(replayedOf(memory, 10, rng), step / steps);
      expect(memory.countsByClass()).toEqual(before);
    }
    await swaps.drain();
    const s = swaps.stats();
    expect(memory.countsByClass()).toEqual(before);
    expect(s.requested + s.skipped).toBe(steps * 10);
    expect(s.requested).toBe(s.applied + s.missed + s.dropped);
    expect(s.fetched).toBe(s.applied + s.dropped);
    expect(s.pending).toBe(0);
    expect(s.dropped).toBe(0);
    expect(applied).toBeLessThanOrEqual(s.applied);
    // Class 4 has nothing stored: its slots keep their stream samples.
    expect(s.missed).toBeGreaterThan(0);
    let swappedIn = 0;
    for (let slot = 0; slot < memory.size; slot++) {
      const f = memory.featuresOf(slot);
      const label = memory.labelOf(slot);
      expect(f[1]).toBe(label);
      if (label === 4) expect(f[0]).toBe(STREAM_TAG);
      else if (f[0] === STORE_TAG) {
        swappedIn++;
        expect(memory.taskOf(slot)).toBe(1 + (label >> 1));
      }
    }
    // 4000 swaps over 80 slots of stored classes: every one was swapped in.
    expect(swappedIn).toBe(80);
    expect(s.meanLagSteps).toBeGreaterThanOrEqual(0);
    expect(s.syncWaitMs).toBe(0);
  });

  // A retry absorbs a scheduler hiccup on a loaded 2-core machine; a step that waited on a read fails every attempt.
  it('never blocks a step on slow storage (20 ms per read), while sync mode waits', { retry: 2 }, async () => {
    const memory = memoryOf();
    const swaps = await start({ memory, storageLatencyMs: 20, maxPendingSwaps: 16, policy: 'hybrid' });
    const rng = new Rng(5);
    let maxAfterStep = 0;
    let maxApply = 0;
    const steps = 60;
    for (let step = 0; step < steps; step++) {
      let t = performance.now();
      swaps.applyReady();
      maxApply = Math.max(maxApply, performance.now() - t);
      const deadline = performance.now() + 3; // a 3 ms "training step" that never yields
      while (performance.now() < deadline);
      const replayed = replayedOf(memory, 10, rng).filter((r) => r.label !== 4);
      t = performance.now();
      swaps.afterStep(replayed, 0.5);
      maxAfterStep = Math.max(maxAfterStep, performance.now() - t);
    }
    const s = swaps.stats();
    expect(maxAfterStep).toBeLessThan(5);
    expect(maxApply).toBeLessThan(5);
    // The worker kept reading meanwhile and its results were applied between steps.
    expect(s.applied).toBeGreaterThan(0);
    expect(s.skipped).toBeGreaterThan(0);
    expect(s.meanLagMs).toBeGreaterThanOrEqual(20);
    await swaps.drain();
    expect(swaps.stats().pending).toBe(0);
    expect(swaps.stats().workerBusyMs).toBeGreaterThanOrEqual(20 * swaps.stats().requested * 0.9);
    console.log(`async, 20 ms storage: max afterStep ${maxAfterStep.toFixed(3)} ms, max applyReady ${maxApply.toFixed(3)} ms over ${steps} steps; requested ${s.requested}, skipped ${s.skipped}`);

    const syncMemory = memoryOf();
    const sync = await start({ memory: syncMemory, mode: 'sync', storageLatencyMs: 20, policy: 'hybrid' });
    const replayed = replayedOf(syncMemory, 10, rng).filter((r) => r.label !== 4);
    const k = Math.ceil(replayed.length * 0.5);
    const t = performance.now();
    sync.afterStep(replayed, 0.5);
    const took = performance.now() - t;
    expect(took).toBeGreaterThanOrEqual(20 * k * 0.95);
    expect(sync.stats()).toMatchObject({ requested: k, applied: k, missed: 0, pending: 0 });
    expect(sync.stats().syncWaitMs).toBeGreaterThanOrEqual(20 * k * 0.95);
    expect(sync.applyReady()).toBe(0);
    console.log(`sync, 20 ms storage: one afterStep with ${k} swaps took ${took.toFixed(1)} ms`);
  });

  it('drops deliveries for slots the stream or a resize refilled meanwhile', async () => {
    const memory = memoryOf({ classes: 4 });
    const swaps = await start({ memory, storageLatencyMs: 10, ratio: 1 });
    const rng = new Rng(6);
    swaps.afterStep(replayedOf(memory, 8, rng), 0);
    // Every slot gets a new generation before anything is delivered.
    memory.resize(memory.capacity, rng);
    await swaps.drain();
    const s = swaps.stats();
    expect(s).toMatchObject({ requested: 8, applied: 0, dropped: 8, missed: 0 });
    for (let slot = 0; slot < memory.size; slot++) expect(memory.featuresOf(slot)[0]).toBe(STREAM_TAG);

    // A slot whose class changed must not receive the old class's sample.
    const slots = replayedOf(memory, 4, rng);
    swaps.afterStep(slots, 0);
    const changed = slots[0]!.slot;
    const f = new Uint8Array(F);
    f[0] = STREAM_TAG;
    f[1] = (memory.labelOf(changed) + 1) % 4;
    memory.replace(changed, f, f[1]!, 2, null, { allowClassChange: true });
    await swaps.drain();
    expect(swaps.stats()).toMatchObject({ requested: 12, applied: 3, dropped: 9 });
    expect(memory.featuresOf(changed)[0]).toBe(STREAM_TAG);
    expect(memory.labelOf(changed)).toBe(f[1]);
  });

  it('swaps in the logits stored with a sample (DER++)', async () => {
    const memory = memoryOf({ logits: true, classes: 4 });
    const swaps = await start({ memory, ratio: 1, maxPendingSwaps: 100 });
    swaps.afterStep(Array.from({ length: memory.size }, (_, slot) => ({ slot, label: memory.labelOf(slot), correct: true, entropy: 0 })), 0);
    await swaps.drain();
    expect(swaps.stats().applied).toBe(100);
    for (let slot = 0; slot < memory.size; slot++) {
      const logits = memory.logitsOf(slot)!;
      expect(logits[0]).toBe(memory.labelOf(slot));
      expect(logits[1]).toBe(memory.featuresOf(slot)[2]);
    }
  });

  it('keeps up a stream of swaps without losing any (rate printed)', async () => {
    const memory = memoryOf({ classes: 4 });
    const swaps = await start({ memory, ratio: 0.5, maxPendingSwaps: 256 });
    const rng = new Rng(7);
    const t = performance.now();
    let steps = 0;
    // Keep the worker saturated: request whenever there is room, apply what is ready.
    while (swaps.stats().applied < 20_000) {
      swaps.applyReady();
      if (swaps.stats().pending <= 256 - 5) {
        swaps.afterStep(replayedOf(memory, 10, rng), 0);
        steps++;
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
    await swaps.drain();
    const seconds = (performance.now() - t) / 1000;
    const s = swaps.stats();
    expect(s).toMatchObject({ skipped: 0, missed: 0, dropped: 0, applied: steps * 5 });
    console.log(`async swaps: ${Math.round(s.applied / seconds)} applied/s (${s.applied} in ${seconds.toFixed(2)} s; worker busy ${s.workerBusyMs.toFixed(0)} ms; mean lag ${s.meanLagSteps.toFixed(2)} steps / ${s.meanLagMs.toFixed(2)} ms)`);
  });
});

describe('SwapManager (sync and off)', () => {
  it('sync applies before afterStep returns; off does nothing', async () => {
    const memory = memoryOf({ classes: 4 });
    const sync = await start({ memory, mode: 'sync', ratio: 1 });
    const replayed = replayedOf(memory, 10, new Rng(1));
    sync.afterStep(replayed, 0);
    for (const r of replayed) expect(memory.featuresOf(r.slot)[0]).toBe(STORE_TAG);
    expect(sync.stats()).toMatchObject({ requested: 10, fetched: 10, applied: 10, meanLagSteps: 0 });

    const offMemory = memoryOf({ classes: 4 });
    const off = await start({ memory: offMemory, mode: 'off', storeFile: '' });
    off.afterStep(replayedOf(offMemory, 10, new Rng(1)), 0);
    expect(off.applyReady()).toBe(0);
    await off.drain();
    expect(off.stats()).toMatchObject({ requested: 0, applied: 0 });
    for (let slot = 0; slot < offMemory.size; slot++) expect(offMemory.featuresOf(slot)[0]).toBe(STREAM_TAG);
  });
});

describe('SwapManager errors', () => {
  it('a missing or foreign store file fails start with a coded error, in both modes', async () => {
    const memory = memoryOf();
    const notStrata = tmp.file('not-a-store.db');
    writeFileSync(notStrata, 'hello, this is not SQLite at all'.repeat(40));
    for (const mode of ['async', 'sync'] as const) {
      expect(await codeOf(SwapManager.start({ mode, ratio: 0.5, policy: 'random', memory, storeFile: tmp.file('missing.db') }))).toBe('STRATA_ERR_STORE_OPEN');
      expect(await codeOf(SwapManager.start({ mode, ratio: 0.5, policy: 'random', memory, storeFile: notStrata }))).toBe('STRATA_ERR_STORE_NOT_STRATA');
    }
  });

  it('a worker that fails mid-run surfaces its coded error at the next step boundary', async () => {
    // The EM holds 32-byte samples; the store holds 64-byte ones.
    const memory = new EpisodicMemory({ capacity: 10, featureSize: 32, featureType: 'uint8', numClasses: 4 });
    for (let n = 0; n < 10; n++) memory.observe(new Uint8Array(32), n % 4, 0);
    const swaps = await start({ memory, ratio: 1 });
    swaps.afterStep([{ slot: 0, label: memory.labelOf(0), correct: true, entropy: 0 }], 0);
    expect(await codeOf(swaps.drain())).toBe('STRATA_ERR_SWAP_SAMPLE_MISMATCH');
    expect(swaps.state).toBe('failed');
    let code: string | undefined;
    try {
      swaps.afterStep([{ slot: 1, label: memory.labelOf(1), correct: true, entropy: 0 }], 0);
    } catch (err) {
      code = isStrataError(err) ? err.code : undefined;
    }
    expect(code).toBe('STRATA_ERR_SWAP_SAMPLE_MISMATCH');
    await swaps.close();
    expect(swaps.state).toBe('closed');
  });

  it('opens a store whose writer has closed it', async () => {
    const file = tmp.file('closed-writer.db');
    const w = SampleStore.open(file);
    w.ingest([{ task: 0, label: 0, features: new Uint8Array(F) }]);
    w.close();
    const memory = memoryOf({ classes: 1 });
    for (const mode of ['async', 'sync'] as const) {
      const swaps = await start({ memory, mode, storeFile: file, ratio: 1 });
      swaps.afterStep([{ slot: 3, label: 0, correct: true, entropy: 0 }], 0);
      await swaps.drain();
      expect(swaps.stats().applied).toBe(1);
    }
  });

  it('bad options fail with STRATA_ERR_BAD_OPTION', async () => {
    const memory = memoryOf();
    const base: SwapManagerOptions = { mode: 'async', ratio: 0.5, policy: 'random', memory, storeFile };
    for (const bad of [{ ratio: 2 }, { mode: 'lazy' }, { policy: 'lru' }, { storageLatencyMs: -1 }, { memory: {} }, { storeFile: '' }, { maxPendingSwaps: 0 }]) {
      expect(await codeOf(SwapManager.start({ ...base, ...bad } as SwapManagerOptions))).toBe('STRATA_ERR_BAD_OPTION');
    }
  });

  it('calls after close fail with STRATA_ERR_STATE; close is idempotent', async () => {
    const memory = memoryOf();
    const swaps = await start({ memory });
    await swaps.close();
    await swaps.close();
    expect(swaps.state).toBe('closed');
    let code: string | undefined;
    try {
      swaps.afterStep(replayedOf(memory, 4, new Rng(1)), 0);
    } catch (err) {
      code = isStrataError(err) ? err.code : undefined;
    }
    expect(code).toBe('STRATA_ERR_STATE');
    expect(swaps.applyReady()).toBe(0);
  });
});
