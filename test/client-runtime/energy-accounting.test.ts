import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { CL_DEFAULTS, runClExperiment, type ClConfig } from '../../client-runtime/cl-experiment.js';
import { DeviceAccounting, estimateJoules } from '../../client-runtime/device-accounting.js';
import { initBackend, type BackendInfo } from '../../ml/backend.js';
import { loadProfile } from '../../profiles/profile-loader.js';

const logger = pino({ level: 'silent' });
let backend: BackendInfo;
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'strata-energy-'));
const config = (over: Partial<ClConfig>): ClConfig => ({ ...CL_DEFAULTS, dataset: 'split-synthetic', memory: 50, ...over });

describe('DeviceAccounting', () => {
  it('charges compute at the profile speed and power, and counts profiling in the totals and on its own', () => {
    const p = loadProfile('jetson-nano-5w');
    const acc = new DeviceAccounting(p, { sensor: 'off' });
    acc.account('training', { computeHostSeconds: 1.2, storage: { writeBytes: 25e6, writes: 1 } });
    acc.account('profiling', { computeHostSeconds: 0.3, storage: { reads: 100, readBytes: 78_400 } });
    const r = acc.finish();
    const computeDevice = (1.2 + 0.3) / p.compute.speedFactor;
    expect(r.deviceTime.computeSeconds).toBeCloseTo(computeDevice, 9);
    expect(r.energy.compute).toBeCloseTo(p.power.computeW * computeDevice, 9);
    expect(r.deviceTime.storageWriteSeconds).toBeCloseTo(25e6 / (p.storage.writeMBps * 1e6) + p.storage.latencyMs / 1000, 9);
    expect(r.energy.idle).toBeCloseTo(p.power.idleW * r.deviceSeconds, 9);
    expect(r.energy.radio).toBe(0);
    expect(r.energy.total).toBeCloseTo(r.energy.compute + r.energy.storage + r.energy.idle, 9);
    expect(r.energy.source).toBe('model');
    const profiling = estimateJoules(p, { computeHostSeconds: 0.3, storage: { reads: 100, readBytes: 78_400 } }).joules.total;
    expect(r.profiling.joules).toBeCloseTo(profiling, 9);
    expect(r.profiling.share).toBeCloseTo(profiling / r.energy.total, 9);
    expect(r.hostSeconds).toBeCloseTo(1.5, 9);
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
    // Host seconds are the training loop's compute seconds; device seconds of compute are host / speed.
    const computeHost = r.tasks.reduce((s, t) => s + t.computeSeconds, 0);
    expect(r.hostSeconds).toBeCloseTo(computeHost, 9);
    expect(r.deviceTime.computeSeconds).toBeCloseTo(computeHost / p.compute.speedFactor, 9);
    expect(r.energy.compute).toBeCloseTo(p.power.computeW * r.deviceTime.computeSeconds, 9);
    expect(r.energy.idle).toBeCloseTo(p.power.idleW * r.deviceSeconds, 9);
    // The background writer stored every stream sample and the swaps read some: storage costs something.
    expect(r.deviceTime.storage.writeBytes).toBe(3000 * 784);
    expect(r.deviceTime.storage.reads).toBe(r.swap!.requested);
    expect(r.energy.storage).toBeGreaterThan(0);
    expect(r.costEffectiveness).toBeCloseTo(r.finalAverageAccuracy / r.energy.total, 12);
    expect(r.profiling.joules).toBe(0);
    expect(r.energyPerTask.reduce((s, t) => s + t.joules, 0)).toBeCloseTo(r.energy.total, 6);
  });

  it('defaults to the reference host, where device seconds are host seconds', async () => {
    const r = await runClExperiment(config({ storage: 'none', swap: 'off' }), tmp(), backend, logger);
    expect(r.profile).toBe('reference-host');
    expect(r.deviceTime.computeSeconds).toBeCloseTo(r.hostSeconds, 9);
    expect(r.energy.storage).toBe(0);
  });

  it('a smaller stream buffer trains fewer samples and costs less', async () => {
    const full = await runClExperiment(config({ storage: 'none', swap: 'off' }), tmp(), backend, logger);
    const quarter = await runClExperiment(config({ storage: 'none', swap: 'off', streamBuffer: 0.25 }), tmp(), backend, logger);
    expect(quarter.streamSamples).toBe(full.tasks.reduce((s, t) => s + Math.ceil(t.streamSamples * 0.25), 0));
    expect(quarter.energy.total).toBeLessThan(full.energy.total * 0.6);
  });
});
