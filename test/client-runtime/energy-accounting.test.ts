import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { CL_DEFAULTS, runClExperiment, type ClConfig } from '../../client-runtime/cl-experiment.js';
import type { TaskTiming } from '../../client-runtime/cl-plugin.js';
import { DeviceAccountingPlugin, taskWork } from '../../client-runtime/device-accounting-plugin.js';
import { DeviceAccounting, estimateJoules } from '../../client-runtime/device-accounting.js';
import { initBackend, type BackendInfo } from '../../ml/backend.js';
import { REFERENCE_HOST_GFLOPS } from '../../profiles/device-profile.js';
import { loadProfile } from '../../profiles/profile-loader.js';

const logger = pino({ level: 'silent' });
let backend: BackendInfo;
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'strata-energy-'));
const config = (over: Partial<ClConfig>): ClConfig => ({ ...CL_DEFAULTS, dataset: 'split-synthetic', memory: 50, ...over });

describe('DeviceAccounting', () => {
  it('prices counted FLOPs at the profile\'s FLOP/s and power, and counts profiling in the totals and on its own', () => {
    const p = loadProfile('jetson-nano-5w');
    const flopsPerSecond = p.compute.gflops * 1e9;
    const acc = new DeviceAccounting(p, { sensor: 'off' });
    acc.account('training', { flops: 1.2 * flopsPerSecond, hostSeconds: 0.1, storage: { writeBytes: 25e6, writes: 1 } });
    acc.account('profiling', { flops: 0.3 * flopsPerSecond, hostSeconds: 0.05, storage: { reads: 100, readBytes: 78_400 } });
    const r = acc.finish();
    expect(r.deviceTime.computeSeconds).toBeCloseTo(1.5, 9);
    expect(r.deviceTime.flops).toBeCloseTo(1.5 * flopsPerSecond, 0);
    expect(r.deviceTime.gflops).toBe(p.compute.gflops);
    expect(r.energy.compute).toBeCloseTo(p.power.computeW * 1.5, 9);
    expect(r.deviceTime.storageWriteSeconds).toBeCloseTo(25e6 / (p.storage.writeMBps * 1e6) + p.storage.latencyMs / 1000, 9);
    expect(r.energy.idle).toBeCloseTo(p.power.idleW * r.deviceSeconds, 9);
    expect(r.energy.radio).toBe(0);
    expect(r.energy.total).toBeCloseTo(r.energy.compute + r.energy.storage + r.energy.idle, 9);
    expect(r.energy.source).toBe('model');
    const profiling = estimateJoules(p, { flops: 0.3 * flopsPerSecond, storage: { reads: 100, readBytes: 78_400 } }).joules.total;
    expect(r.profiling.joules).toBeCloseTo(profiling, 9);
    expect(r.profiling.flops).toBeCloseTo(0.3 * flopsPerSecond, 0);
    expect(r.profiling.share).toBeCloseTo(profiling / r.energy.total, 9);
    // Host seconds are the diagnostic handed in, never priced.
    expect(r.hostSeconds).toBeCloseTo(0.15, 9);
  });

  it('prices a federated round\'s radio work: bytes over the links plus round trips at the receive power', () => {
    const p = loadProfile('jetson-nano-5w');
    const acc = new DeviceAccounting(p, { sensor: 'off' });
    // 1 MB down at 50 Mbit/s = 0.16 s, 1 MB up at 20 Mbit/s = 0.4 s, 2 round trips of 30 ms.
    const seconds = acc.account('training', { flops: 0, network: { downBytes: 1e6, upBytes: 1e6, roundTrips: 2 } });
    expect(seconds).toBeCloseTo(0.16 + 0.4 + 0.06, 9);
    const r = acc.finish();
    expect(r.energy.radio).toBeCloseTo(p.power.radioRxW * (0.16 + 0.06) + p.power.radioTxW * 0.4, 9);
    expect(r.energy.idle).toBeCloseTo(p.power.idleW * 0.62, 9);
    expect(estimateJoules(p, { flops: 0, network: { downBytes: 1e6, upBytes: 1e6, roundTrips: 2 } }).joules.total).toBeCloseTo(r.energy.total, 9);
  });

  it('as a plugin, prices each task\'s training FLOPs, stream writes, swap reads and EM fills', () => {
    const p = loadProfile('jetson-nano-5w');
    const acc = new DeviceAccounting(p, { sensor: 'off' });
    const plugin = new DeviceAccountingPlugin(acc, { sampleBytes: 784 });
    const timing: TaskTiming = {
      task: 1, boundary: true, flops: 4e9, trainSeconds: 0.5, computeSeconds: 0.4, computeClock: 'thread-cpu', streamSamples: 2000, replaySamples: 2000,
      steps: 200, streamBuffer: 1, emCapacity: 100, swapRatio: 0.5, persistedSamples: 2000, swapReads: 1000, fillReads: 50, pretrainedSamples: 0,
    };
    expect(taskWork(timing, 784)).toEqual({
      flops: 4e9, hostSeconds: 0.4, storage: { writeBytes: 2000 * 784, writes: 2, readBytes: 1050 * 784, reads: 1050 },
    });
    plugin.afterTask(timing);
    const expected = estimateJoules(p, taskWork(timing, 784));
    expect(plugin.perTask).toEqual([{ task: 1, flops: 4e9, hostSeconds: 0.4, deviceSeconds: expect.closeTo(expected.deviceSeconds, 9), joules: expect.closeTo(expected.joules.total, 9) }]);
    expect(acc.report().deviceTime.storage).toEqual({ readBytes: 1050 * 784, writeBytes: 2000 * 784, reads: 1050, writes: 2 });
  });
});

describe('device time and energy in a continual-learning run', () => {
  beforeAll(async () => {
    backend = await initBackend({ backend: 'wasm' });
  });

  it('integrates the energy of a CL run on a profiled device', async () => {
    const p = loadProfile('jetson-nano-5w');
    const r = await runClExperiment(config({ profile: 'jetson-nano-5w' }), tmp(), backend, logger);
    expect(r.profile).toBe('jetson-nano-5w');
    expect(r.energy.total).toBeGreaterThan(0);
    expect(r.energy.source).toBe('model');
    expect(r.energy.sources.compute).toBe('model');
    // Device seconds of compute are the counted training FLOPs at the profile's FLOP/s; host seconds are the loop's CPU time, beside.
    const flops = r.tasks.reduce((s, t) => s + t.flops, 0);
    const w = r.modelWork;
    expect(flops).toBe(r.tasks.reduce((s, t) => s + (t.streamSamples + t.replaySamples) * w.trainingFlopsPerSample + t.steps * w.optimizerFlopsPerStep, 0));
    expect(w.trainingFlopsPerSample).toBe(3 * 470_282);
    expect(r.deviceTime.flops).toBe(flops);
    expect(r.deviceTime.computeSeconds).toBeCloseTo(flops / (p.compute.gflops * 1e9), 9);
    expect(r.hostSeconds).toBeCloseTo(r.tasks.reduce((s, t) => s + t.computeSeconds, 0), 9);
    expect(r.energy.compute).toBeCloseTo(p.power.computeW * r.deviceTime.computeSeconds, 9);
    expect(r.energy.idle).toBeCloseTo(p.power.idleW * r.deviceSeconds, 9);
    // The background writer stored every stream sample and the swaps read some: storage costs something.
    expect(r.deviceTime.storage.writeBytes).toBe(3000 * 784);
    // Every read the swap policy asked for is the device's (the host's async worker may skip some under backlog).
    expect(r.deviceTime.storage.reads).toBe(r.swap!.requested + r.swap!.skipped);
    expect(r.priceList.compute.flopsPerSecond).toBeCloseTo(p.compute.gflops * 1e9, 0);
    expect(r.energy.storage).toBeGreaterThan(0);
    expect(r.costEffectiveness).toBeCloseTo(r.finalAverageAccuracy / r.energy.total, 12);
    expect(r.profiling.joules).toBe(0);
    expect(r.energyPerTask.reduce((s, t) => s + t.joules, 0)).toBeCloseTo(r.energy.total, 6);
  });

  it('defaults to the reference host, priced at its measured FLOP/s', async () => {
    const r = await runClExperiment(config({ storage: 'none', swap: 'off' }), tmp(), backend, logger);
    expect(r.profile).toBe('reference-host');
    expect(r.deviceTime.gflops).toBe(REFERENCE_HOST_GFLOPS);
    expect(r.deviceTime.computeSeconds).toBeCloseTo(r.deviceTime.flops / (REFERENCE_HOST_GFLOPS * 1e9), 9);
    expect(r.energy.storage).toBe(0);
  });

  it('a smaller stream buffer trains fewer samples and costs less', async () => {
    const full = await runClExperiment(config({ storage: 'none', swap: 'off' }), tmp(), backend, logger);
    const quarter = await runClExperiment(config({ storage: 'none', swap: 'off', streamBuffer: 0.25 }), tmp(), backend, logger);
    expect(quarter.streamSamples).toBe(full.tasks.reduce((s, t) => s + Math.ceil(t.streamSamples * 0.25), 0));
    expect(quarter.energy.total).toBeLessThan(full.energy.total * 0.6);
  });
});
