/**
 * Miro's online profiler (Ma et al., MobiCom 2023): at task boundaries it
 * tries candidate configurations of the memory hierarchy by short trial
 * trainings from the current checkpoint, on a `dataRatio` slice of the next
 * task's stream with the EM scaled by the same ratio, measures accuracy on
 * held-out samples of every task seen, estimates each candidate's energy for
 * the next task with the device model, and applies the most cost-effective
 * one above the accuracy cutline.
 */
import type { Logger } from 'pino';
import type * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';
import type { ClassIncrementalScenario } from '../../ml/datasets/class-incremental.js';
import { Rng } from '../../ml/rng.js';
import type { Trainer } from '../../ml/trainer.js';
import { getFlatWeights, setFlatWeights } from '../../ml/weights.js';
import type { DeviceProfile } from '../../profiles/device-profile.js';
import { SampleStore } from '../../storage-tier/sample-store.js';
import type { ClStrategy } from '../cl-strategies/cl-strategy.js';
import { ContinualLearner, type TaskTiming } from '../continual-learner.js';
import { estimateJoules, type DeviceAccounting, type DeviceWork } from '../device-accounting.js';
import type { MemoryHierarchy } from '../memory-hierarchy.js';
import { buildCandidateSpace, candidateKey, type CandidateSpace, type CandidateSpaceOptions, type MiroCandidate } from './candidate-space.js';
import { chooseCandidate, utility, type CandidateResult } from './choice.js';
import { createNavigator, NAVIGATORS, type Navigator, type NavigatorName } from './navigators.js';
import { snapshotMemory, TrialMemory } from './trial-memory.js';

export interface MiroOptions extends CandidateSpaceOptions {
  /**
   * First task index profiled before (earlier tasks run with the defaults).
   * Default 0: before every task, the first included. The paper's code starts
   * later; here the first task's stream buffer is a fifth of a split-MNIST
   * run's energy, too much to leave at a default. Trials before task 0 score
   * the new task alone, so they choose the stream buffer; the EM size is
   * chosen again at the next boundary (a grown EM is filled from the store).
   */
  profileFromTask?: number;
  /** Fraction of the next task's stream buffer and of the EM size a trial uses. Default 0.05. */
  dataRatio?: number;
  /** Default `weighted-random`. */
  navigator?: NavigatorName;
  /** Share of the candidates a random / weighted-random round tries. Default 0.2 (at least 3). */
  navigatorFraction?: number;
  /** Top fraction by accuracy kept before the accuracy-per-joule pick. Default 0.3. */
  cutline?: number;
  /** Held-out samples per task (the tail of its stream, never trained on) the trials are scored on. Default 100. */
  validationPerTask?: number;
}

export interface CompiledMiroOptions {
  readonly profileFromTask: number;
  readonly dataRatio: number;
  readonly navigator: NavigatorName;
  readonly navigatorFraction: number;
  readonly cutline: number;
  readonly validationPerTask: number;
  readonly memories: readonly number[];
  readonly streamBuffers: readonly number[];
  readonly swapRatios: readonly number[];
}

export const MIRO_DEFAULTS = Object.freeze({
  profileFromTask: 0, dataRatio: 0.05, navigator: 'weighted-random' as NavigatorName, navigatorFraction: 0.2, cutline: 0.3, validationPerTask: 100,
});

function bad(option: string, why: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `Miro option '${option}' ${why} (got ${JSON.stringify(value)})`, { option, value });
}

export function compileMiroOptions(options: MiroOptions = {}): CompiledMiroOptions {
  const d = MIRO_DEFAULTS;
  const o = { ...d, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<MiroOptions>;
  if (!Number.isInteger(o.profileFromTask) || o.profileFromTask < 0) throw bad('profileFromTask', 'must be an integer >= 0', o.profileFromTask);
  if (!(o.dataRatio > 0 && o.dataRatio <= 1)) throw bad('dataRatio', 'must be in (0, 1]', o.dataRatio);
  if (!NAVIGATORS.includes(o.navigator)) throw bad('navigator', `must be one of ${NAVIGATORS.join(', ')}`, o.navigator);
  if (!(o.navigatorFraction > 0 && o.navigatorFraction <= 1)) throw bad('navigatorFraction', 'must be in (0, 1]', o.navigatorFraction);
  if (!(o.cutline > 0 && o.cutline <= 1)) throw bad('cutline', 'must be in (0, 1]', o.cutline);
  if (!Number.isInteger(o.validationPerTask) || o.validationPerTask < 1) throw bad('validationPerTask', 'must be an integer >= 1', o.validationPerTask);
  const space = buildCandidateSpace(options);
  return Object.freeze({
    profileFromTask: o.profileFromTask, dataRatio: o.dataRatio, navigator: o.navigator, navigatorFraction: o.navigatorFraction,
    cutline: o.cutline, validationPerTask: o.validationPerTask,
    memories: space.memories, streamBuffers: space.streamBuffers, swapRatios: space.swapRatios,
  });
}

/** One candidate as the report shows it. */
export interface CandidateRecord {
  key: string;
  memory: number;
  streamBuffer: number;
  swapRatio: number;
  /** Held-out accuracy on the seen tasks after the trial. */
  accuracy: number;
  /** Estimated joules of the next task under this configuration (device model, full scale). */
  joules: number;
  /** Accuracy per joule. */
  utility: number;
  /** What the trial cost (profiling). */
  trialJoules: number;
  trialSeconds: number;
  /** Above the accuracy cutline. */
  kept: boolean;
  chosen: boolean;
}

export interface BoundaryRecord {
  /** The task the choice applies to (trained next). */
  task: number;
  navigator: NavigatorName;
  candidates: CandidateRecord[];
  chosen: { key: string; memory: number; streamBuffer: number; swapRatio: number };
  /** This boundary's profiling cost. */
  hostSeconds: number;
  deviceSeconds: number;
  joules: number;
  /** Host compute seconds per trained sample used for the full-scale estimates, and where it came from. */
  secondsPerSample: number;
  calibration: 'main-run' | 'trials';
  validationSamples: number;
}

export interface MiroReport {
  options: CompiledMiroOptions;
  spaceSize: number;
  boundaries: BoundaryRecord[];
  /** The configuration each task ran with (defaults before the first profiled boundary). */
  configPerTask: { task: number; memory: number; streamBuffer: number; swapRatio: number; profiled: boolean }[];
}

export interface MiroContext {
  scenario: ClassIncrementalScenario;
  learner: ContinualLearner;
  hierarchy: MemoryHierarchy;
  strategy: ClStrategy;
  model: tf.LayersModel;
  /** A second trainer over the same model, for trials (its optimiser state is the trials' own). */
  makeTrainer: () => Trainer;
  profile: DeviceProfile;
  accounting: DeviceAccounting;
  batch: number;
  epochs: number;
  seed: number;
  logger?: Logger;
}

/** Miro's profiler, hooked at the learner's `beforeTask`. */
export class MiroProfiler {
  readonly options: CompiledMiroOptions;
  readonly space: CandidateSpace;
  readonly #navigator: Navigator;
  readonly #ctx: MiroContext;
  readonly #rng: Rng;
  readonly #boundaries: BoundaryRecord[] = [];
  readonly #configPerTask: MiroReport['configPerTask'] = [];
  readonly #mainTimings: TaskTiming[] = [];
  #store: SampleStore | null | undefined;

  constructor(ctx: MiroContext, options: MiroOptions = {}) {
    this.options = compileMiroOptions(options);
    this.space = buildCandidateSpace(this.options);
    this.#navigator = createNavigator(this.options.navigator, this.space, { fraction: this.options.navigatorFraction });
    this.#ctx = ctx;
    this.#rng = new Rng(ctx.seed * 104729 + 17);
  }

  /** The main run's timing of a finished task (calibrates the full-scale energy estimates). */
  noteTaskTrained(timing: TaskTiming): void {
    this.#mainTimings.push(timing);
  }

  /** Before task `index`: profile (from `profileFromTask` on) and apply the choice. */
  async beforeTask(index: number): Promise<void> {
    const h = this.#ctx.hierarchy;
    if (index >= this.options.profileFromTask) await this.#profile(index);
    this.#configPerTask.push({
      task: index, memory: h.memory.capacity, streamBuffer: this.#ctx.learner.streamBuffer, swapRatio: h.swapRatio,
      profiled: index >= this.options.profileFromTask,
    });
  }

  report(): MiroReport {
    return { options: this.options, spaceSize: this.space.candidates.length, boundaries: this.#boundaries, configPerTask: this.#configPerTask };
  }

  close(): void {
    this.#store?.close();
    this.#store = null;
  }

  #openStore(): SampleStore | null {
    if (this.#store === undefined) {
      const file = this.#ctx.hierarchy.storeFile;
      this.#store = file === null || this.#ctx.hierarchy.options.swap === 'off' ? null : SampleStore.openReadOnly(file);
    }
    return this.#store;
  }

  async #profile(t: number): Promise<void> {
    const { scenario, learner, hierarchy, strategy, model, accounting, profile, batch, epochs } = this.#ctx;
    const task = scenario.tasks[t]!;
    const avail = learner.availableIndices(task);
    const validation = concat(scenario.tasks.slice(0, t + 1).map((x) => learner.holdoutIndices(x)));
    const swapping = t > 0 && hierarchy.options.storage !== 'none' && hierarchy.options.swap !== 'off';
    const store = swapping ? this.#openStore() : null;
    const weights = getFlatWeights(model);
    const em = snapshotMemory(hierarchy.memory);
    const trainer = this.#ctx.makeTrainer();
    const sampleBytes = hierarchy.sampleBytes;
    const candidates = this.#navigator.select(this.#rng);
    const trials: { c: MiroCandidate; accuracy: number; trialJoules: number; trialSeconds: number; hostSeconds: number; trainSeconds: number; samples: number }[] = [];
    try {
      for (const [i, c] of candidates.entries()) {
        const seed = this.#ctx.seed * 31 + t * 1009 + i;
        const mem = new TrialMemory(em, {
          capacity: Math.max(1, Math.round(c.memory * this.options.dataRatio)), swapping, swapRatio: c.swapRatio, store, seed,
        });
        const n = Math.max(1, Math.min(avail.length, Math.ceil(this.options.dataRatio * c.streamBuffer * avail.length)));
        const trialLearner = new ContinualLearner(trainer, strategy, mem, { batch, epochs, seed });
        const timing = await trialLearner.trainTask(scenario, task, t, avail.subarray(0, n));
        const e0 = performance.now();
        const accuracy = trainer.evaluate(scenario.dataset.train, { indices: validation }).accuracy;
        const evalSeconds = (performance.now() - e0) / 1000;
        setFlatWeights(model, weights);
        const work: DeviceWork = {
          computeHostSeconds: timing.computeSeconds + evalSeconds,
          storage: { reads: timing.swapReads, readBytes: timing.swapReads * sampleBytes },
        };
        const seconds = accounting.account('profiling', work);
        const trialJoules = estimateJoules(profile, work).joules.total;
        trials.push({
          c, accuracy, trialJoules, trialSeconds: seconds, hostSeconds: work.computeHostSeconds, trainSeconds: timing.computeSeconds,
          samples: timing.streamSamples + timing.replaySamples,
        });
      }
    } finally {
      setFlatWeights(model, weights);
      trainer.dispose();
    }
    // Full-scale estimates: samples the next task would train x measured host seconds per sample, plus its storage I/O.
    const main = this.#mainTimings.reduce((a, x) => ({ s: a.s + x.computeSeconds, n: a.n + x.streamSamples + x.replaySamples }), { s: 0, n: 0 });
    const fromTrials = trials.reduce((a, x) => ({ s: a.s + x.trainSeconds, n: a.n + x.samples }), { s: 0, n: 0 });
    const calibration = main.n > 0 ? 'main-run' as const : 'trials' as const;
    const cal = main.n > 0 ? main : fromTrials;
    const secondsPerSample = cal.n > 0 ? cal.s / cal.n : 0;
    const persist = hierarchy.options.storage !== 'none';
    const results: CandidateResult[] = trials.map((x) => {
      const kept = Math.max(1, Math.min(avail.length, Math.ceil(x.c.streamBuffer * avail.length)));
      const steps = Math.ceil(kept / batch) * epochs;
      const replay = strategy.replayCount(batch, x.c.memory);
      const samples = kept * epochs + steps * replay;
      const reads = swapping ? steps * Math.ceil(x.c.swapRatio * replay) : 0;
      const joules = estimateJoules(profile, {
        computeHostSeconds: samples * secondsPerSample,
        storage: {
          reads, readBytes: reads * sampleBytes,
          writes: persist ? Math.ceil(kept / 1024) : 0, writeBytes: persist ? kept * sampleBytes : 0,
        },
      }).joules.total;
      return { candidate: x.c, accuracy: x.accuracy, joules, trialJoules: x.trialJoules, trialSeconds: x.trialSeconds };
    });
    const choice = chooseCandidate(results, this.options.cutline);
    this.#navigator.observe(results, choice.chosen);
    const c = choice.chosen;
    const { filled } = hierarchy.resizeMemory(c.memory, this.#rng);
    if (filled > 0) accounting.account('training', { computeHostSeconds: 0, storage: { reads: filled, readBytes: filled * sampleBytes } });
    await hierarchy.setSwapRatio(c.swapRatio);
    learner.setStreamBuffer(c.streamBuffer);
    const keptSet = new Set(choice.kept);
    const record: BoundaryRecord = {
      task: t,
      navigator: this.options.navigator,
      candidates: results.map((r) => ({
        key: r.candidate.key, memory: r.candidate.memory, streamBuffer: r.candidate.streamBuffer, swapRatio: r.candidate.swapRatio,
        accuracy: r.accuracy, joules: r.joules, utility: utility(r), trialJoules: r.trialJoules, trialSeconds: r.trialSeconds,
        kept: keptSet.has(r.candidate.key), chosen: r.candidate.key === c.key,
      })),
      chosen: { key: candidateKey(c), memory: c.memory, streamBuffer: c.streamBuffer, swapRatio: c.swapRatio },
      hostSeconds: trials.reduce((s, x) => s + x.hostSeconds, 0),
      deviceSeconds: trials.reduce((s, x) => s + x.trialSeconds, 0),
      joules: trials.reduce((s, x) => s + x.trialJoules, 0),
      secondsPerSample, calibration, validationSamples: validation.length,
    };
    this.#boundaries.push(record);
    this.#ctx.logger?.info({ task: t, tried: results.length, chosen: record.chosen.key, joules: record.joules }, `miro: task ${t + 1} runs with ${record.chosen.key}`);
  }
}

function concat(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let k = 0;
  for (const p of parts) {
    out.set(p, k);
    k += p.length;
  }
  return out;
}
