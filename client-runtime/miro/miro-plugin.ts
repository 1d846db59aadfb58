/**
 * Miro's online profiler (Ma et al., MobiCom 2023) as a plugin of the CL
 * loop: at a task boundary it plans a round of candidate configurations
 * (EM size, stream buffer, swap ratio), runs short trial trainings from the
 * current checkpoint on a `dataRatio` slice of the new task's stream
 * (`trials.ts`), scores them on the held-out rows of every task seen,
 * prices each candidate's next task with the device's price list (counted
 * work, `next-task-energy.ts`), decides by accuracy per joule above the
 * accuracy cutline (`decide-round.ts`), applies the choice through the
 * memory hierarchy's knobs and the loop's stream buffer, and records the
 * round (`record.ts`). Its inputs are the loop's (the split, the new task's
 * available rows, the validation rows), so it runs wherever the loop runs:
 * `strata cl`, or a federated device whose boundaries are new classes in
 * its stream.
 *
 * The trial's EM is the candidate's full size, not scaled by `dataRatio` as
 * Miro's code does: replay draws `replay` samples a step whatever the EM
 * size, so a smaller EM makes the trial no cheaper, and a scaled one (25
 * slots x 5% = 1) replays the same sample over and over, which says nothing
 * about the candidate (such trials scored em25 0.47 where em25 ends a full
 * run at 0.85). A larger candidate EM is filled from the store, as the
 * device's EM is when Miro grows it.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { Rng } from '../../ml/rng.js';
import type { OptimizerKind, Trainer } from '../../ml/trainer.js';
import { setFlatWeights } from '../../ml/weights.js';
import { trainingWork, type TrainingWork } from '../../ml/work-count.js';
import type { SampleStore } from '../../storage-tier/sample-store.js';
import { hostBusyClock, type BusyClock } from '../busy-clock.js';
import type { MemoryKnobs } from '../carm/memory-knobs.js';
import type { ClMethod } from '../cl-methods/cl-method.js';
import type { ClPlugin, TaskStart } from '../cl-plugin.js';
import type { DeviceAccounting } from '../device-accounting.js';
import { buildCandidateSpace, type CandidateSpace } from './candidate-space.js';
import { decideRound } from './decide-round.js';
import { compileMiroOptions, type CompiledMiroOptions, type MiroOptions } from './miro-options.js';
import type { BoundaryRecord, MiroConfig, MiroReport } from './miro-report.js';
import { createNavigator, type Navigator, type NavigatorState } from './navigators.js';
import { planRound } from './plan.js';
import { boundaryRecord } from './record.js';
import { runTrials } from './trials.js';

export { compileMiroOptions, MIRO_DEFAULTS, type CompiledMiroOptions, type MiroOptions } from './miro-options.js';
export type { BoundaryRecord, CandidateRecord, MiroConfig, MiroReport, SkippedCandidate } from './miro-report.js';

/** What Miro works with, besides what each boundary hands it. */
export interface MiroContext {
  /** The memory hierarchy's knobs: EM capacity, swap ratio, snapshots and the store for trial memories. */
  knobs: MemoryKnobs;
  /** The CL method (replay per step; DER++'s stored logits rule out reusing a trial). */
  strategy: ClMethod;
  /** The model the loop trains: trials start from its weights, which are restored after them. */
  model: tf.LayersModel;
  /** A second trainer over the same model, for trials (its optimiser state is the trials' own). */
  makeTrainer: () => Trainer;
  /** The trainers' optimizer: its FLOPs per step are counted. */
  optimizer: OptimizerKind;
  /** The device's accounting: prices candidates and trials (its profile), takes the profiling work, and holds the run's joules (the budget). */
  accounting: DeviceAccounting;
  batch: number;
  epochs: number;
  seed: number;
  /** How trial compute is timed for the host diagnostic. Default: this thread's CPU time. */
  busyClock?: BusyClock;
  logger?: Logger;
}

/**
 * What Miro has learned and decided so far, as JSON: a federated device
 * carries it from round to round (the agent's next round, or a simulated
 * client's next job on another slot), with the rest of its state.
 */
export interface MiroState {
  boundaries: BoundaryRecord[];
  configPerTask: MiroReport['configPerTask'];
  config: MiroConfig | null;
  joulesAtTaskStart: number;
  lastTaskJoules: number;
  navigator: NavigatorState | null;
}

/** Miro's profiler, a `ClPlugin`: profiles in `beforeTask` when `shouldProfile` says so. */
export class MiroPlugin implements ClPlugin {
  readonly name = 'miro';
  readonly options: CompiledMiroOptions;
  readonly space: CandidateSpace;
  readonly #navigator: Navigator;
  readonly #ctx: MiroContext;
  readonly #work: TrainingWork;
  readonly #rng: Rng;
  readonly #boundaries: BoundaryRecord[];
  readonly #configPerTask: MiroReport['configPerTask'];
  #store: SampleStore | null | undefined;
  #config: MiroConfig | null = null;
  /** Modelled joules of the run when the current task started (after its boundary's profiling). */
  #joulesAtTaskStart = 0;
  /** Modelled joules of the last task trained (0 before the first). */
  #lastTaskJoules = 0;

  /** `state`: what an earlier instance exported (`exportState`), to carry on from. */
  constructor(ctx: MiroContext, options: MiroOptions = {}, state?: MiroState) {
    this.options = compileMiroOptions(options);
    this.space = buildCandidateSpace(this.options);
    this.#navigator = createNavigator(this.options.navigator, this.space, { fraction: this.options.navigatorFraction });
    this.#ctx = ctx;
    this.#work = trainingWork(ctx.model, ctx.optimizer);
    this.#rng = new Rng(ctx.seed * 104729 + 17);
    this.#boundaries = [...(state?.boundaries ?? [])];
    this.#configPerTask = [...(state?.configPerTask ?? [])];
    this.#config = state?.config ?? null;
    this.#joulesAtTaskStart = state?.joulesAtTaskStart ?? 0;
    this.#lastTaskJoules = state?.lastTaskJoules ?? 0;
    if (state?.navigator != null) this.#navigator.importState?.(state.navigator);
  }

  exportState(): MiroState {
    return {
      boundaries: [...this.#boundaries], configPerTask: [...this.#configPerTask], config: this.#config,
      joulesAtTaskStart: this.#joulesAtTaskStart, lastTaskJoules: this.#lastTaskJoules, navigator: this.#navigator.exportState?.() ?? null,
    };
  }

  /** The configuration in force (set at each boundary, profiled or not); null before the first. */
  get config(): MiroConfig | null {
    return this.#config;
  }

  /** Every profiled boundary's record, in order. */
  get boundaries(): readonly BoundaryRecord[] {
    return this.#boundaries;
  }

  /** The last profiled boundary's record (candidates with accuracy and joules, the choice, profiling joules). */
  get lastBoundary(): BoundaryRecord | undefined {
    return this.#boundaries.at(-1);
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

  /** At a task boundary: profile (see `shouldProfile`) and apply the choice; otherwise the current configuration stays. */
  async beforeTask(start: TaskStart): Promise<void> {
    const { knobs, accounting } = this.#ctx;
    if (start.index > 0) this.#lastTaskJoules = accounting.joules - this.#joulesAtTaskStart;
    const profiled = this.shouldProfile(start.index);
    if (profiled) await this.#profile(start);
    this.#config = { memory: knobs.capacity, streamBuffer: start.loop.streamBuffer, swapRatio: knobs.swapRatio };
    this.#configPerTask.push({ task: start.index, ...this.#config, profiled });
    this.#joulesAtTaskStart = accounting.joules;
  }

  report(): MiroReport {
    return { options: this.options, spaceSize: this.space.candidates.length, boundaries: this.#boundaries, configPerTask: this.#configPerTask };
  }

  close(): void {
    this.#store?.close();
    this.#store = null;
  }

  async #profile(start: TaskStart): Promise<void> {
    const ctx = this.#ctx;
    const { knobs } = ctx;
    const snapshot = knobs.snapshot();
    const swapping = start.index > 0 && knobs.canSwap;
    const plan = planRound({
      options: this.options, space: this.space, selected: this.#navigator.select(this.#rng), index: start.index,
      next: {
        profile: ctx.accounting.profile, work: this.#work, availableSamples: start.task.indices.length, batch: ctx.batch, epochs: ctx.epochs,
        swapping, persist: knobs.persists, sampleBytes: knobs.sampleBytes, strategy: ctx.strategy,
      },
      memoryHoldsSamples: snapshot.labels.length > 0,
      present: { memory: knobs.capacity, swapRatio: knobs.swapRatio },
      validationSamples: start.validation.length,
    });
    const outcome = await runTrials(plan, {
      options: this.options, split: start.split, task: start.task, validation: start.validation, snapshot,
      store: start.index > 0 ? this.#openStore() : null, sampleBytes: knobs.sampleBytes,
      model: ctx.model, makeTrainer: ctx.makeTrainer, optimizer: ctx.optimizer, work: this.#work, strategy: ctx.strategy,
      accounting: ctx.accounting, batch: ctx.batch, epochs: ctx.epochs, seed: ctx.seed, busy: ctx.busyClock ?? hostBusyClock(),
      ...(ctx.logger === undefined ? {} : { logger: ctx.logger }),
    });
    const decision = decideRound(plan, outcome, this.options.cutline);
    this.#navigator.observe(decision.results, decision.chosen);
    const c = decision.chosen;
    // Apply: a grown EM is filled from the store (the loop's accounting counts those reads as the task's work).
    knobs.resizeMemory(c.memory, this.#rng);
    await knobs.setSwapRatio(c.swapRatio);
    start.loop.setStreamBuffer(c.streamBuffer);
    const reuse = outcome.trained.get(c.key);
    const reusedSamples = reuse?.samples ?? 0;
    if (reuse !== undefined && reusedSamples > 0) {
      setFlatWeights(ctx.model, reuse.weights);
      start.loop.setPretrainedPrefix(reusedSamples);
    }
    const record = boundaryRecord(plan, outcome, decision, this.options.navigator, reusedSamples);
    this.#boundaries.push(record);
    ctx.logger?.info({ task: start.index, tried: record.candidates.length, skipped: record.skipped.length, chosen: record.chosen.key, joules: record.joules },
      `miro: task ${start.index + 1} runs with ${record.chosen.key}`);
  }

  #openStore(): SampleStore | null {
    if (this.#store === undefined) this.#store = this.#ctx.knobs.openStoreReadOnly();
    return this.#store;
  }
}
