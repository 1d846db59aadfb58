import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { CL_DEFAULTS, runClExperiment, type ClConfig } from '../../client-runtime/cl-experiment.js';
import { compileMiroOptions } from '../../client-runtime/miro/miro-plugin.js';
import { initBackend, type BackendInfo } from '../../ml/backend.js';
import { clReportHtml } from '../../cli/reports/cl-report-html.js';
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
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, minTrialSteps: 1, profilingBudget: 1, skipMootTrials: false },
    }), tmp(), backend, logger);
    const miro = r.miro!;
    expect(miro.spaceSize).toBe(4);
    for (const b of miro.boundaries) expect(b.skipped).toEqual([]);
    expect(miro.boundaries.map((b) => b.task)).toEqual([0, 1, 2, 3, 4]);
    for (const b of miro.boundaries) {
      expect(b.candidates).toHaveLength(4); // grid
      expect(b.candidates.filter((c) => c.chosen)).toHaveLength(1);
      // One epoch: each EM size is one trial scored at each stream buffer's prefix (before task 0, one trial for all).
      const trials = b.candidates.filter((c) => c.trialJoules > 0);
      expect(trials).toHaveLength(b.task === 0 ? 2 : 4);
      expect(b.joules).toBeCloseTo(b.candidates.reduce((s, c) => s + c.trialJoules, 0), 9);
      // Estimates and trial costs are counted work priced by the profile; the moot check costs nothing.
      expect(b.calibration).toBe('counted');
      expect(b.checkJoules).toBe(0);
      expect(b.flops).toBe(b.candidates.reduce((s, c) => s + c.trialFlops, 0));
      expect(b.flopsPerStep).toBeGreaterThan(0);
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
    // Before task 0 the EM is empty: its size is not judged, and the candidate nearest the flags' 100 stands for the sizes.
    expect(miro.boundaries.map((b) => b.memoryJudged)).toEqual([false, true, true, true, true]);
    expect(miro.boundaries[0]!.chosen.memory).toBe(40);
    expect(miro.boundaries[0]!.candidates.filter((c) => c.kept).every((c) => c.memory === 40)).toBe(true);
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
    expect(r.profiling.flops).toBe(miro.boundaries.reduce((s, b) => s + b.flops, 0));
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
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, minTrialSteps: 1, profileEvery: 2, profilingBudget: 1 },
    }), tmp(), backend, logger);
    const miro = r.miro!;
    // Task 1 is profiled whatever the cadence: before it the EM size was never judged.
    expect(miro.boundaries.map((b) => b.task)).toEqual([0, 1, 3]);
    expect(miro.configPerTask.map((c) => c.profiled)).toEqual([true, true, false, true, false]);
    for (const b of miro.boundaries) expect(b.margin).toBeGreaterThanOrEqual(0);
    for (const t of [2, 4]) {
      const { memory, streamBuffer, swapRatio } = miro.boundaries.find((b) => b.task === t - 1)!.chosen;
      expect(miro.configPerTask[t]).toMatchObject({ memory, streamBuffer, swapRatio });
      expect(r.tasks[t]!.emCapacity).toBe(memory);
    }
    expect(r.profiling.joules).toBeCloseTo(miro.boundaries.reduce((s, b) => s + b.joules, 0), 6);
    // A budget no round fits in profiles only where it must: the first boundary and the first that judges EM sizes.
    const frugal = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, minTrialSteps: 1, profilingBudget: 0.001 },
    }), tmp(), backend, logger);
    expect(frugal.miro!.boundaries.map((b) => b.task)).toEqual([0, 1]);
    expect(frugal.miro!.configPerTask.slice(2).map((c) => c.memory)).toEqual([0, 0, 0].map(() => frugal.miro!.boundaries[1]!.chosen.memory));
    // At the default budget (0.1) a later boundary is profiled exactly when another round like the last keeps
    // profiling within 10% of the run's energy (so far, plus that round and a task like the last).
    const budgeted = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro', tasks: 5,
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, minTrialSteps: 1 },
    }), tmp(), backend, logger);
    const rounds = budgeted.miro!.boundaries;
    expect(rounds.slice(0, 2).map((b) => b.task)).toEqual([0, 1]);
    for (let t = 2; t < 5; t++) {
      const before = rounds.filter((x) => x.task < t);
      const spent = before.reduce((s, x) => s + x.joules, 0);
      const total = spent + budgeted.energyPerTask.filter((x) => x.task < t).reduce((s, x) => s + x.joules, 0);
      const round = before.at(-1)!.joules;
      const lhs = spent + round;
      const rhs = 0.1 * (total + round + budgeted.energyPerTask[t - 1]!.joules);
      if (rounds.some((x) => x.task === t)) expect(lhs).toBeLessThanOrEqual(rhs * 1.01);
      else expect(lhs).toBeGreaterThanOrEqual(rhs * 0.99);
    }
    expect(budgeted.profiling.share).toBeLessThan(0.5);
    // Without reuse every task trains its whole kept stream.
    const fresh = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20], streamBuffers: [0.5], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, reuseChosenTrial: false },
    }), tmp(), backend, logger);
    for (const b of fresh.miro!.boundaries) expect(b.reusedSamples).toBe(0);
    for (const t of fresh.tasks) expect([t.pretrainedSamples, t.streamSamples]).toEqual([0, 280]);
    // A trial runs at least minTrialSteps steps: 5% of the 280 kept samples is 14, the floor of 20 steps of 10 makes it 200.
    const floored = await runClExperiment(config({
      memory: 100, profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20], streamBuffers: [0.5], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.05, validationPerTask: 40, minTrialSteps: 20, profilingBudget: 1, skipMootTrials: false },
    }), tmp(), backend, logger);
    expect(floored.miro!.boundaries.map((b) => b.reusedSamples)).toEqual([200, 200, 200, 200, 200]);
    for (const t of floored.tasks) expect([t.pretrainedSamples, t.streamSamples]).toEqual([200, 80]);
  });

  it('skips a moot last trial: the same choices as running it, for less profiling energy', async () => {
    // No storage (no asynchronous swaps): both runs train the same trials but the skipped ones, and every estimate is
    // counted work, so the choices can only differ if skipping changed them.
    const run = (skipMootTrials: boolean) => runClExperiment(config({
      memory: 100, storage: 'none', swap: 'off', profile: 'jetson-nano-5w', profiler: 'miro',
      miro: { memories: [20, 40], streamBuffers: [0.5, 1], swapRatios: [0.5], navigator: 'grid', dataRatio: 0.2, validationPerTask: 40, minTrialSteps: 1, profilingBudget: 1, skipMootTrials },
    }), tmp(), backend, logger);
    const full = await run(false);
    const all = full.miro!;
    const r = await run(true);
    const some = r.miro!;
    expect(some.boundaries.map((b) => b.chosen.key)).toEqual(all.boundaries.map((b) => b.chosen.key));
    // Before task 0 the two stream buffers share one trial; the larger one's extension costs twice the energy for the
    // next task, and with both kept it cannot win unless it doubles the smaller one's accuracy: moot.
    expect(some.boundaries[0]!.skipped.map((x) => x.streamBuffer)).toEqual([1, 1]);
    let saved = 0;
    some.boundaries.forEach((b, t) => {
      const full = all.boundaries[t]!;
      // Every candidate is either scored, with the accuracy the full round measured, or skipped.
      expect([...b.candidates.map((c) => c.key), ...b.skipped.map((x) => x.key)].sort()).toEqual(full.candidates.map((c) => c.key).sort());
      for (const c of b.candidates) expect(c.accuracy).toBe(full.candidates.find((x) => x.key === c.key)!.accuracy);
      for (const x of b.skipped) {
        expect(x.chosen).toBe(x.key === b.chosen.key);
        expect(x.stepsSaved).toBeGreaterThan(0);
        expect(x.joules).toBeGreaterThan(0);
      }
      saved += b.skipped[0]?.stepsSaved ?? 0;
      expect(b.joules).toBeCloseTo(b.candidates.reduce((s, c) => s + c.trialJoules, 0) + b.checkJoules, 9);
      if (b.skipped.length === 0) expect(b.checkJoules).toBeGreaterThanOrEqual(0);
    });
    expect(saved).toBeGreaterThan(0);
    // Same choices, same reused trial weights: the same run.
    expect(r.finalAverageAccuracy).toBeCloseTo(full.finalAverageAccuracy, 6);
    // Less profiling work: fewer candidates trained a trial, for fewer counted FLOPs and joules.
    const trialed = (m: typeof all): number => m.boundaries.reduce((n, b) => n + b.candidates.length, 0);
    expect(trialed(some)).toBeLessThan(trialed(all));
    expect(r.profiling.flops).toBeLessThan(full.profiling.flops);
    expect(r.profiling.joules).toBeLessThan(full.profiling.joules);
    // The report lists what was not trialed.
    const html = clReportHtml(r);
    expect(html).toContain('not trialed');
  });

  it('validates the cadence options', () => {
    expect(compileMiroOptions()).toMatchObject({ profileEvery: 1, profilingBudget: 0.1, minTrialSteps: 30, reuseChosenTrial: true, skipMootTrials: true });
    expect(() => compileMiroOptions({ skipMootTrials: 'yes' as unknown as boolean })).toThrow(/skipMootTrials/);
    expect(() => compileMiroOptions({ profileEvery: 0 })).toThrow(/profileEvery/);
    expect(() => compileMiroOptions({ profileEvery: 1.5 })).toThrow(/profileEvery/);
    expect(() => compileMiroOptions({ profilingBudget: 0 })).toThrow(/profilingBudget/);
    expect(() => compileMiroOptions({ profilingBudget: 1.5 })).toThrow(/profilingBudget/);
    expect(() => compileMiroOptions({ minTrialSteps: 0 })).toThrow(/minTrialSteps/);
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
    expect(html).toMatch(/Profiled before (every task|tasks 1, 2)/);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.profile).toBe('phone-lowend');
    for (const k of ['hostSeconds', 'deviceSeconds', 'costEffectiveness']) expect(report[k]).toBeGreaterThan(0);
    expect(Object.keys(report.energy)).toEqual(expect.arrayContaining(['compute', 'storage', 'radio', 'idle', 'total', 'source']));
    expect(report.profiling.share).toBeGreaterThan(0);
    expect(report.miro.boundaries[0].candidates.length + report.miro.boundaries[0].skipped.length).toBeGreaterThanOrEqual(3);
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
