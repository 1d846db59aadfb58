/**
 * Miro's online profiler (Ma et al., MobiCom 2023): at task boundaries it
 * tries candidate configurations of the memory hierarchy by short trial
 * trainings from the current checkpoint, on a `dataRatio` slice of the next
 * task's stream, measures accuracy on held-out samples of every task seen,
 * estimates each candidate's energy for the next task with the device model,
 * and applies the most cost-effective one above the accuracy cutline.
 *
 * The trial's EM is the candidate's full size, not scaled by `dataRatio` as
 * Miro's code does: replay draws `replay` samples a step whatever the EM
 * size, so a smaller EM makes the trial no cheaper, and a scaled one (25
 * slots x 5% = 1) replays the same sample over and over, which says nothing
 * about the candidate (such trials scored em25 0.47 where em25 ends a full
 * run at 0.85). A larger candidate EM is filled from the store, as the
 * device's EM is when Miro grows it.
 */
import { concatIndices } from '../../ml/datasets/dataset.js';
import type { Logger } from 'pino';
import type * as tf from '@tensorflow/tfjs';
import type { ClassIncrementalScenario } from '../../ml/datasets/class-incremental.js';
import { Rng } from '../../ml/rng.js';
import type { Trainer } from '../../ml/trainer.js';
import { getFlatWeights, setFlatWeights } from '../../ml/weights.js';
import type { DeviceProfile } from '../../profiles/device-profile.js';
import { SampleStore } from '../../storage-tier/sample-store.js';
import type { ClStrategy } from '../cl-strategies/cl-strategy.js';
import { ContinualLearner, type TaskTiming } from '../continual-learner.js';
import { estimateJoules, hostBusyClock, type BusyClock, type DeviceAccounting, type DeviceWork } from '../device-accounting.js';
import type { MemoryHierarchy } from '../carm/memory-hierarchy.js';
import { buildCandidateSpace, candidateKey, type CandidateSpace, type MiroCandidate } from './candidate-space.js';
import { utility, type CandidateResult } from './choice.js';
import { decide, judgedKey, scoreCanChangeChoice, type Judged } from './decision.js';
import { keptSamples, nextTaskJoules } from './next-task-energy.js';
import { createNavigator, type Navigator, type NavigatorName } from './navigators.js';
import { snapshotMemory, TrialMemory } from './trial-memory.js';
import { compileMiroOptions, type CompiledMiroOptions, type MiroOptions } from './miro-options.js';

export { compileMiroOptions, MIRO_DEFAULTS, type CompiledMiroOptions, type MiroOptions } from './miro-options.js';

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
  /** Above the accuracy cutline (moot candidates, see `skipped`, counted at accuracy 0: any score gives the same choice, not always the same cut). */
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
  /** Host busy seconds per training step used for the full-scale estimates, and where it came from. */
  secondsPerStep: number;
  calibration: 'main-run' | 'trials';
  validationSamples: number;
  /** Leading stream samples of the task the chosen candidate's trial trained; the main run continued from its weights (0: not reused). */
  reusedSamples: number;
  /** How far the chosen candidate's accuracy per joule is above the best other kept one's, relative to it (0 when no other kept candidate differs from it in accuracy or joules). */
  margin: number;
  /** Whether the trials could tell EM sizes apart (false before the first task: the EM is empty, and its size stays as it was). */
  memoryJudged: boolean;
  /** Of `joules`: deciding whether the round's last trial was moot (see `skipped`). */
  checkJoules: number;
  /** Candidates the navigator selected whose trial was not run: no accuracy it could reach would have changed the choice (see `skipMootTrials`). */
  skipped: SkippedCandidate[];
}

/** A selected candidate whose trial was moot. */
export interface SkippedCandidate {
  key: string;
  memory: number;
  streamBuffer: number;
  swapRatio: number;
  /** Estimated joules of the next task under it (device model, full scale). */
  joules: number;
  /** Training steps its trial would have run beyond the prefix already scored. */
  stepsSaved: number;
  /** The round chose it all the same (every accuracy it could score led to it: e.g. the only configuration left to pick). */
  chosen: boolean;
}

export interface MiroReport {
  options: CompiledMiroOptions;
  spaceSize: number;
  boundaries: BoundaryRecord[];
  /** The configuration each task ran with (defaults before the first profiled boundary; the previous choice at a boundary not profiled). */
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
  /** How trial compute is timed; the main run's clock. Default: this thread's CPU time. */
  busyClock?: BusyClock;
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
  /** Modelled joules of the run when the current task started (after its boundary's profiling). */
  #joulesAtTaskStart = 0;
  /** Modelled joules of the last task trained (0 before the first). */
  #lastTaskJoules = 0;

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

  /**
   * Whether to profile before task `index`: from `profileFromTask` on, always
   * at the first boundary and at the first one where EM sizes can be judged
   * (a past task in memory); after that, once `profileEvery` boundaries have
   * passed since the last profiled one and another round (costing what the
   * last one did) keeps profiling within `profilingBudget` of the run's
   * energy (so far, plus that round and a task like the last one).
   */
  shouldProfile(index: number): boolean {
    const o = this.options;
    if (index < o.profileFromTask) return false;
    const last = this.#boundaries.at(-1);
    if (last === undefined) return true;
    if (index > 0 && !this.#boundaries.some((b) => b.memoryJudged)) return true;
    if (index - last.task < o.profileEvery) return false;
    const spent = this.#boundaries.reduce((s, b) => s + b.joules, 0);
    const total = this.#ctx.accounting.joules;
    return spent + last.joules <= o.profilingBudget * (total + last.joules + this.#lastTaskJoules) + 1e-9;
  }

  /** Before task `index`: profile (see `shouldProfile`) and apply the choice; otherwise the current configuration stays. */
  async beforeTask(index: number): Promise<void> {
    const h = this.#ctx.hierarchy;
    if (index > 0) this.#lastTaskJoules = this.#ctx.accounting.joules - this.#joulesAtTaskStart;
    const profiled = this.shouldProfile(index);
    if (profiled) await this.#profile(index);
    this.#configPerTask.push({ task: index, memory: h.memory.capacity, streamBuffer: this.#ctx.learner.streamBuffer, swapRatio: h.swapRatio, profiled });
    this.#joulesAtTaskStart = this.#ctx.accounting.joules;
  }

  report(): MiroReport {
    return { options: this.options, spaceSize: this.space.candidates.length, boundaries: this.#boundaries, configPerTask: this.#configPerTask };
  }

  close(): void {
    this.#store?.close();
    this.#store = null;
  }

  /**
   * The trials a round runs. With one epoch a trial's stream is a prefix of
   * the task's (the first pass keeps stream order), so the navigator's
   * candidates that share an EM size and swap ratio are one trial over the
   * largest one's slice, scored at each smaller one's prefix; the other
   * stream buffers of that EM size and swap ratio below the largest cost one
   * evaluation each and are scored too. Before swapping starts (task 0) the
   * swap ratio changes nothing, so candidates differing only in it share
   * their trial; nor, with the EM still empty (before the first task), does
   * the EM size much: it only bounds how many of the task's own samples are
   * replayed, which 100 held-out samples of two classes cannot resolve, and
   * the EM size is chosen again at the next boundary. So before task 0 one
   * trial scores the stream buffers. With more epochs every candidate is its
   * own trial. The group with the longest trial runs last: that trial is the
   * one most worth skipping when no score it could reach changes the choice.
   */
  #trialGroups(selected: readonly MiroCandidate[], judged: Judged, epochs: number, trialSize: (c: MiroCandidate) => number): MiroCandidate[][] {
    const key = (c: MiroCandidate): string => judgedKey(c, judged);
    const largest = new Map<string, number>();
    for (const c of selected) largest.set(key(c), Math.max(largest.get(key(c)) ?? 0, c.streamBuffer));
    const groups = epochs !== 1 ? selected.map((c) => [c]) : [...largest.entries()].map(([k, sb]) => {
      const group = this.space.candidates.filter((c) => key(c) === k && c.streamBuffer <= sb);
      // The navigator's own pick leads, so the trial memory takes its swap ratio.
      const lead = selected.find((c) => key(c) === k)!;
      return [lead, ...group.filter((c) => c.key !== lead.key)];
    });
    // The longest trial runs last, where it is skipped if moot (see `skipMootTrials`).
    if (!this.options.skipMootTrials) return groups;
    const longest = (g: MiroCandidate[]): number => Math.max(...g.map(trialSize));
    return groups.map((g, i) => ({ g, i })).sort((a, b) => longest(a.g) - longest(b.g) || a.i - b.i).map((x) => x.g);
  }

  #openStore(): SampleStore | null {
    if (this.#store === undefined) {
      const file = this.#ctx.hierarchy.storeFile;
      this.#store = file === null ? null : SampleStore.openReadOnly(file);
    }
    return this.#store;
  }

  async #profile(t: number): Promise<void> {
    const { scenario, learner, hierarchy, strategy, model, accounting, profile, batch, epochs } = this.#ctx;
    const busy = this.#ctx.busyClock ?? hostBusyClock();
    const task = scenario.tasks[t]!;
    const avail = learner.availableIndices(task);
    const validation = concatIndices(scenario.tasks.slice(0, t + 1).map((x) => learner.holdoutIndices(x)));
    const swapping = t > 0 && hierarchy.options.storage !== 'none' && hierarchy.options.swap !== 'off';
    const store = t > 0 ? this.#openStore() : null;
    const weights = getFlatWeights(model);
    const em = snapshotMemory(hierarchy.memory);
    const sampleBytes = hierarchy.sampleBytes;
    const present = { memory: hierarchy.memory.capacity, swapRatio: hierarchy.swapRatio };
    const kept = (c: MiroCandidate): number => keptSamples(avail.length, c.streamBuffer);
    // A trial trains its `dataRatio` share of the candidate's kept stream, but never fewer than `minTrialSteps` steps (nor more than the kept stream).
    const trialSize = (c: MiroCandidate): number => Math.min(kept(c), Math.max(Math.ceil(this.options.dataRatio * kept(c)), this.options.minTrialSteps * batch));
    const judged: Judged = { memory: em.labels.length > 0, swapRatio: swapping };
    const groups = this.#trialGroups(this.#navigator.select(this.#rng), judged, epochs, trialSize);
    const trials: { c: MiroCandidate; accuracy: number; trialJoules: number; trialSeconds: number; hostSeconds: number }[] = [];
    // The round's last trial segment when it was moot (see skipMootTrials): its candidates, priced, and the steps it would have trained.
    let mootSegment: { candidates: Omit<CandidateResult, 'accuracy'>[]; stepsSaved: number } | undefined;
    const check = { hostSeconds: 0, seconds: 0, joules: 0 };
    const calibration = { s: 0, n: 0 };
    const main = this.#mainTimings.reduce((a, x) => ({ s: a.s + x.computeSeconds, n: a.n + x.steps }), { s: 0, n: 0 });
    // Host busy seconds per training step for the full-scale estimates: the main run's once there is one, else the trials' so far.
    const secondsPerStep = (): number => {
      const cal = main.n > 0 ? main : calibration;
      return cal.n > 0 ? cal.s / cal.n : 0;
    };
    const persist = hierarchy.options.storage !== 'none';
    const joulesOf = (c: MiroCandidate): number => nextTaskJoules(c, {
      profile, availableSamples: avail.length, batch, epochs, secondsPerStep: secondsPerStep(), swapping, persist, sampleBytes, strategy,
    });
    const resultsSoFar = (): CandidateResult[] => trials.map((x) => ({
      candidate: x.c, accuracy: x.accuracy, joules: joulesOf(x.c), trialJoules: x.trialJoules, trialSeconds: x.trialSeconds, validationSamples: validation.length,
    }));
    const unscored = (c: MiroCandidate): Omit<CandidateResult, 'accuracy'> => ({ candidate: c, joules: joulesOf(c), trialJoules: 0, trialSeconds: 0, validationSamples: validation.length });
    // Whether a segment's score could still change the choice, everything else scored. The check is device work, counted as
    // profiling, with the store reads that filled the segment's trial memory (made either way).
    const couldChangeChoice = (here: readonly MiroCandidate[], fillReads: number): boolean => {
      const c0 = busy.seconds();
      const canChange = scoreCanChangeChoice(resultsSoFar(), { candidates: here.map(unscored) }, validation.length, judged, present, this.options.cutline);
      const work: DeviceWork = { computeHostSeconds: busy.seconds() - c0, storage: { reads: fillReads, readBytes: fillReads * sampleBytes } };
      check.hostSeconds += work.computeHostSeconds;
      check.seconds += accounting.account('profiling', work);
      check.joules += estimateJoules(profile, work).joules.total;
      return canChange;
    };
    // Weights after each candidate's trial prefix, to continue the main run from the chosen one's (one epoch: see reuseChosenTrial).
    const reusable = this.options.reuseChosenTrial && epochs === 1 && !strategy.storesLogits;
    const trained = new Map<string, { weights: Float32Array; samples: number }>();
    try {
      for (const [g, group] of groups.entries()) {
        const first = group[0]!;
        const seed = this.#ctx.seed * 31 + t * 1009 + g;
        const mem = new TrialMemory(em, { capacity: first.memory, swapping, swapRatio: first.swapRatio, store, seed, busyClock: busy });
        const trainer = this.#ctx.makeTrainer();
        try {
          const trialLearner = new ContinualLearner(trainer, strategy, mem, { batch, epochs, seed, busyClock: busy });
          let done = 0;
          let fillReads = mem.fillReads;
          let scored: number | undefined;
          // A group's candidates differ only in stream buffer (see #trialGroups): one pass over the largest one's slice,
          // scored at the end of each smaller one's prefix, is each smaller trial (epochs 1: the first pass keeps stream order).
          const prefixes = [...new Set(group.map((c) => c.streamBuffer))].sort((a, b) => a - b);
          for (const sb of prefixes) {
            const n = trialSize(group.find((c) => c.streamBuffer === sb)!);
            const here = group.filter((c) => c.streamBuffer === sb);
            // The round's last trial segment, everything else scored: run it only if its score could change the choice
            // (once steps have been timed, by the main run or a trial, so that the candidates' joules are estimates).
            if (n > done && this.options.skipMootTrials && g === groups.length - 1 && sb === prefixes.at(-1) && main.n + calibration.n > 0) {
              const moot = !couldChangeChoice(here, fillReads);
              fillReads = 0;
              if (moot) {
                mootSegment = { candidates: here.map(unscored), stepsSaved: Math.ceil((n - done) / batch) * epochs };
                this.#ctx.logger?.debug({ task: t, skipped: here.map((c) => c.key), stepsSaved: mootSegment.stepsSaved }, 'miro: trial moot, not run');
                break;
              }
            }
            let computeHostSeconds = 0;
            let reads = fillReads;
            fillReads = 0;
            if (n > done) {
              scored = undefined;
              const timing = await trialLearner.trainTask(scenario, task, t, avail.subarray(done, n));
              computeHostSeconds += timing.computeSeconds;
              reads += timing.swapReads;
              calibration.s += timing.computeSeconds;
              calibration.n += timing.steps;
              this.#ctx.logger?.debug({ task: t, group: first.key, samples: n - done, steps: timing.steps, computeSeconds: timing.computeSeconds }, 'miro: trial trained');
              done = n;
            }
            // Stream buffers whose trials are the same length (the `minTrialSteps` floor) share one score.
            if (scored === undefined) {
              const e0 = busy.seconds();
              scored = trainer.evaluate(scenario.dataset.train, { indices: validation }).accuracy;
              computeHostSeconds += busy.seconds() - e0;
            }
            const accuracy = scored;
            const work: DeviceWork = { computeHostSeconds, storage: { reads, readBytes: reads * sampleBytes } };
            const seconds = accounting.account('profiling', work);
            const trialJoules = estimateJoules(profile, work).joules.total;
            if (reusable) {
              const w = getFlatWeights(model);
              for (const c of here) trained.set(c.key, { weights: w, samples: done });
            }
            // The cost is paid once; the first candidate at this prefix carries it, so the boundary's total is the sum.
            here.forEach((c, k) => trials.push({
              c, accuracy, trialJoules: k === 0 ? trialJoules : 0, trialSeconds: k === 0 ? seconds : 0, hostSeconds: k === 0 ? computeHostSeconds : 0,
            }));
          }
        } finally {
          setFlatWeights(model, weights);
          trainer.dispose();
        }
      }
    } finally {
      setFlatWeights(model, weights);
    }
    const results = resultsSoFar();
    // The choice is Miro's rule over one stand-in per configuration the trials can tell apart (see decision.ts). A moot
    // trial's candidates enter at any accuracy (0 here): by `scoreCanChangeChoice`, every accuracy gives the same choice.
    const moot = mootSegment?.candidates ?? [];
    const choice = decide([...results, ...moot.map((x) => ({ ...x, accuracy: 0 }))], judged, present, this.options.cutline);
    this.#navigator.observe(results, choice.chosen);
    const c = choice.chosen;
    const skipped: SkippedCandidate[] = moot.map(({ candidate: x, joules }) => ({
      key: x.key, memory: x.memory, streamBuffer: x.streamBuffer, swapRatio: x.swapRatio, joules, stepsSaved: mootSegment!.stepsSaved, chosen: x.key === c.key,
    }));
    const { filled } = hierarchy.resizeMemory(c.memory, this.#rng);
    if (filled > 0) accounting.account('training', { computeHostSeconds: 0, storage: { reads: filled, readBytes: filled * sampleBytes } });
    await hierarchy.setSwapRatio(c.swapRatio);
    learner.setStreamBuffer(c.streamBuffer);
    const reuse = trained.get(c.key);
    const reusedSamples = reuse?.samples ?? 0;
    if (reuse !== undefined && reusedSamples > 0) {
      setFlatWeights(model, reuse.weights);
      learner.setPretrainedPrefix(reusedSamples);
    }
    const keptSet = new Set(choice.kept);
    // Candidates that shared the chosen one's trial and estimate (before task 0, the EM sizes) are the same choice, not a runner-up.
    const chosenResult = results.find((r) => r.candidate.key === c.key);
    const chosenUtility = chosenResult === undefined ? 0 : utility(chosenResult);
    const others = results
      .filter((r) => keptSet.has(r.candidate.key) && !(r.accuracy === chosenResult?.accuracy && r.joules === chosenResult.joules))
      .map((r) => utility(r));
    const margin = others.length === 0 || chosenUtility <= 0 ? 0 : (chosenUtility - Math.max(...others)) / chosenUtility;
    const record: BoundaryRecord = {
      task: t,
      navigator: this.options.navigator,
      candidates: results.map((r) => ({
        key: r.candidate.key, memory: r.candidate.memory, streamBuffer: r.candidate.streamBuffer, swapRatio: r.candidate.swapRatio,
        accuracy: r.accuracy, joules: r.joules, utility: utility(r), trialJoules: r.trialJoules, trialSeconds: r.trialSeconds,
        kept: keptSet.has(r.candidate.key), chosen: r.candidate.key === c.key,
      })),
      chosen: { key: candidateKey(c), memory: c.memory, streamBuffer: c.streamBuffer, swapRatio: c.swapRatio },
      hostSeconds: trials.reduce((s, x) => s + x.hostSeconds, 0) + check.hostSeconds,
      deviceSeconds: trials.reduce((s, x) => s + x.trialSeconds, 0) + check.seconds,
      joules: trials.reduce((s, x) => s + x.trialJoules, 0) + check.joules,
      checkJoules: check.joules,
      secondsPerStep: secondsPerStep(), calibration: main.n > 0 ? 'main-run' : 'trials', validationSamples: validation.length, margin, reusedSamples,
      memoryJudged: judged.memory, skipped,
    };
    this.#boundaries.push(record);
    this.#ctx.logger?.info({ task: t, tried: results.length, skipped: skipped.length, chosen: record.chosen.key, joules: record.joules }, `miro: task ${t + 1} runs with ${record.chosen.key}`);
  }
}
