import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { CL_DEFAULTS, runClExperiment, type ClConfig } from '../../client-runtime/cl-experiment.js';
import { compileMiroOptions } from '../../client-runtime/miro/miro-profiler.js';
import { initBackend, type BackendInfo } from '../../ml/backend.js';
import { strata } from '../cli/run-strata.js';

const logger = pino({ level: 'silent' });
let backend: BackendInfo;
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'strata-miro-'));
const config = (over: Partial<ClConfig>): ClConfig => ({ ...CL_DEFAULTS, dataset: 'split-synthetic', ...over });

describe("Miro's online profiler", () => {
  beforeAll(async () => {
    backend = await initBackend({ backend: 'wasm' });
  });

  it('profiles at every boundary, changes the EM size, reports every candidate, and counts profiling in the totals', async () => {
    const r = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40 },
    }), tmp(), backend, logger);
    const miro = r.miro!;
    expect(miro.spaceSize).toBe(4);
    expect(miro.boundaries.map((b) => b.task)).toEqual([0, 1, 2, 3, 4]);
    for (const b of miro.boundaries) {
      expect(b.candidates).toHaveLength(4); // grid
      expect(b.candidates.filter((c) => c.chosen)).toHaveLength(1);
      // One epoch: each EM size is one trial scored at each stream buffer's prefix (before task 0, one trial for all).
      const trials = b.candidates.filter((c) => c.trialJoules > 0);
      expect(trials).toHaveLength(b.task === 0 ? 2 : 4);
      expect(b.joules).toBeCloseTo(b.candidates.reduce((s, c) => s + c.trialJoules, 0), 9);
      if (b.task === 0) {
        for (const sb of [0.5, 1]) expect(new Set(b.candidates.filter((c) => c.streamBuffer === sb).map((c) => c.accuracy)).size).toBe(1);
      }
      for (const c of b.candidates) {
        expect(c.accuracy).toBeGreaterThanOrEqual(0);
        expect(c.accuracy).toBeLessThanOrEqual(1);
        expect(c.joules).toBeGreaterThan(0);
        expect(c.trialJoules).toBeGreaterThanOrEqual(0);
        expect(c.utility).toBeCloseTo(c.accuracy / c.joules, 12);
      }
      // Full-scale estimates: half the stream costs clearly less than all of it.
      const half = b.candidates.find((c) => c.memory === 20 && c.streamBuffer === 0.5)!;
      const all = b.candidates.find((c) => c.memory === 20 && c.streamBuffer === 1)!;
      expect(half.joules).toBeLessThan(all.joules * 0.7);
    }
    // The EM was resized from the flags' 100 to a candidate's size, and each task ran with the chosen config.
    expect([20, 40]).toContain(r.memory!.emCapacity);
    expect(miro.configPerTask.map((c) => c.memory).every((m) => m === 20 || m === 40)).toBe(true);
    miro.configPerTask.forEach((c, t) => {
      const chosen = miro.boundaries[t]!.chosen;
      expect(c).toMatchObject({ memory: chosen.memory, streamBuffer: chosen.streamBuffer, swapRatio: chosen.swapRatio });
      expect(r.tasks[t]!.emCapacity).toBe(c.memory);
      expect(r.tasks[t]!.streamBuffer).toBeCloseTo(c.streamBuffer, 2);
    });
    // Profiling is in the totals and reported on its own.
    const profilingJ = miro.boundaries.reduce((s, b) => s + b.joules, 0);
    expect(r.profiling.joules).toBeCloseTo(profilingJ, 6);
    expect(r.profiling.joules).toBeGreaterThan(0);
    const trainingJ = r.energyPerTask.reduce((s, t) => s + t.joules, 0);
    expect(r.energy.total).toBeGreaterThanOrEqual(trainingJ + profilingJ - 1e-6);
    expect(r.energy.total - trainingJ - profilingJ).toBeLessThan(0.01 * r.energy.total); // the rest: filling grown EMs from the store
    expect(r.profiling.share).toBeCloseTo(r.profiling.joules / r.energy.total, 9);
    expect(r.costEffectiveness).toBeCloseTo(r.finalAverageAccuracy / r.energy.total, 12);
    // Held-out samples are never trained on: each task trained at most (600 - 40) x its stream buffer.
    for (const t of r.tasks) expect(t.streamSamples).toBeLessThanOrEqual(Math.ceil((600 - 40) * t.streamBuffer));
    // The chosen candidate's trial is the task's first dataRatio share of its kept stream: the main run continued from it.
    miro.boundaries.forEach((b, t) => {
      const kept = Math.ceil((600 - 40) * b.chosen.streamBuffer);
      expect(b.reusedSamples).toBe(Math.ceil(0.2 * kept));
      expect(r.tasks[t]!.pretrainedSamples).toBe(b.reusedSamples);
      expect(r.tasks[t]!.streamSamples).toBe(kept - b.reusedSamples);
    });
  });

  it('profiles every profileEvery-th boundary and keeps the previous choice in between', async () => {
    const r = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, profileEvery: 2 },
    }), tmp(), backend, logger);
    const miro = r.miro!;
    expect(miro.boundaries.map((b) => b.task)).toEqual([0, 2, 4]);
    expect(miro.configPerTask.map((c) => c.profiled)).toEqual([true, false, true, false, true]);
    for (const b of miro.boundaries) expect(b.margin).toBeGreaterThanOrEqual(0);
    for (const t of [1, 3]) {
      const { memory, streamBuffer, swapRatio } = miro.boundaries.find((b) => b.task === t - 1)!.chosen;
      expect(miro.configPerTask[t]).toMatchObject({ memory, streamBuffer, swapRatio });
      expect(r.tasks[t]!.emCapacity).toBe(memory);
    }
    expect(r.profiling.joules).toBeCloseTo(miro.boundaries.reduce((s, b) => s + b.joules, 0), 6);
    // A margin every choice is within re-profiles at every boundary whatever the cadence.
    const close = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, profileEvery: 5, reprofileMargin: 1 },
    }), tmp(), backend, logger);
    expect(close.miro!.boundaries.map((b) => b.task)).toEqual([0, 1, 2, 3, 4]);
    // Without reuse every task trains its whole kept stream.
    const fresh = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20], streamBuffers: [0.5], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, reuseChosenTrial: false },
    }), tmp(), backend, logger);
    for (const b of fresh.miro!.boundaries) expect(b.reusedSamples).toBe(0);
    for (const t of fresh.tasks) expect([t.pretrainedSamples, t.streamSamples]).toEqual([0, 280]);
  });

  it('validates the cadence options', () => {
    expect(compileMiroOptions()).toMatchObject({ profileEvery: 1, reprofileMargin: null, reuseChosenTrial: true });
    expect(() => compileMiroOptions({ profileEvery: 0 })).toThrow(/profileEvery/);
    expect(() => compileMiroOptions({ profileEvery: 1.5 })).toThrow(/profileEvery/);
    expect(() => compileMiroOptions({ reprofileMargin: -0.1 })).toThrow(/reprofileMargin/);
  });

  it('rejects --profiler miro with a method that has no memory', async () => {
    await expect(runClExperiment(config({ method: 'finetune', profiler: 'miro' }), tmp(), backend, logger)).rejects.toMatchObject({ code: 'STRATA_ERR_BAD_FLAG' });
  });

  it('strata cl --profiler miro writes report.html with the candidates scatter', () => {
    const out = tmp();
    const r = strata('cl', '--dataset', 'split-synthetic', '--profiler', 'miro', '--profile', 'phone-lowend', '--navigator', 'random', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/device phone-lowend: .* J \(model\)/);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<canvas id="miro-scatter-0"');
    expect(html).toContain("type: 'scatter'");
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.profile).toBe('phone-lowend');
    for (const k of ['hostSeconds', 'deviceSeconds', 'costEffectiveness']) expect(report[k]).toBeGreaterThan(0);
    expect(Object.keys(report.energy)).toEqual(expect.arrayContaining(['compute', 'storage', 'radio', 'idle', 'total', 'source']));
    expect(report.profiling.share).toBeGreaterThan(0);
    expect(report.miro.boundaries[0].candidates.length).toBeGreaterThanOrEqual(3);
    expect(existsSync(path.join(out, 'report.json'))).toBe(true);
  });

  it('bad Miro flags exit non-zero with one line naming the flag', () => {
    for (const [args, flag] of [[['--cutline', '0'], '--cutline'], [['--navigator', 'astar'], '--navigator'], [['--profile-data-ratio', '2'], '--profile-data-ratio'], [['--miro-memories', '10,x'], '--miro-memories']] as const) {
      const r = strata('cl', '--dataset', 'split-synthetic', '--profiler', 'miro', ...args);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(flag);
    }
  });
});
