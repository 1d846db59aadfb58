/**
 * Running a round's trials: for each trial group, a short training from the
 * current checkpoint on a trial memory (a copy of the device's EM at the
 * candidate's size), scored on the held-out rows at each candidate's prefix.
 * Each trial segment is device work, priced as profiling: its training FLOPs,
 * its validation forward pass and its store reads. The model's weights are
 * restored after every group.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import type { DataSplit } from '../../ml/datasets/dataset.js';
import type { OptimizerKind, Trainer } from '../../ml/trainer.js';
import { getFlatWeights, setFlatWeights } from '../../ml/weights.js';
import { inferenceFlops, type TrainingWork } from '../../ml/work-count.js';
import type { SampleStore } from '../../storage-tier/sample-store.js';
import type { BusyClock } from '../busy-clock.js';
import type { MemorySnapshot } from '../carm/memory-knobs.js';
import type { ClMethod } from '../cl-methods/cl-method.js';
import type { ClTaskRows } from '../cl-plugin.js';
import { ContinualLearner } from '../continual-learner.js';
import { estimateJoules, type DeviceAccounting, type DeviceWork } from '../device-accounting.js';
import type { MiroCandidate } from './candidate-space.js';
import type { CandidateResult } from './choice.js';
import { scoreCanChangeChoice } from './decision.js';
import type { CompiledMiroOptions } from './miro-options.js';
import type { RoundPlan } from './plan.js';
import { TrialMemory } from './trial-memory.js';

/** What the trials of a round run on. */
export interface TrialEnv {
  readonly options: CompiledMiroOptions;
  readonly split: DataSplit;
  /** The new task's available stream rows; a trial trains a prefix of them. */
  readonly task: ClTaskRows;
  /** Held-out rows of every task seen so far: each trial is scored on them. */
  readonly validation: Int32Array;
  readonly snapshot: MemorySnapshot;
  /** The device's store, read-only (swaps and fills of trial memories); null before swapping starts or without storage. */
  readonly store: SampleStore | null;
  /** Payload bytes of one stored sample (store reads are priced per byte). */
  readonly sampleBytes: number;
  readonly model: tf.LayersModel;
  readonly makeTrainer: () => Trainer;
  readonly optimizer: OptimizerKind;
  readonly work: TrainingWork;
  readonly strategy: ClMethod;
  readonly accounting: DeviceAccounting;
  readonly batch: number;
  readonly epochs: number;
  readonly seed: number;
  readonly busy: BusyClock;
  readonly logger?: Logger;
}

/** One candidate scored by a trial segment. The segment's cost is carried by its first candidate (0 on the others). */
export interface TrialScore {
  readonly candidate: MiroCandidate;
  readonly accuracy: number;
  readonly trialJoules: number;
  readonly trialSeconds: number;
  readonly trialFlops: number;
  readonly hostSeconds: number;
}

/** The round's last trial segment when it was moot: its candidates, priced, and the steps it would have trained. */
export interface MootSegment {
  readonly candidates: readonly Omit<CandidateResult, 'accuracy'>[];
  readonly stepsSaved: number;
}

export interface TrialsOutcome {
  readonly scores: readonly TrialScore[];
  readonly moot: MootSegment | undefined;
  /** Weights after each candidate's trial prefix, to continue the main run from the chosen one's (one epoch, no stored logits). */
  readonly trained: ReadonlyMap<string, { weights: Float32Array; samples: number }>;
}

/** The scored candidates as results for Miro's rule. */
export function resultsOf(plan: RoundPlan, scores: readonly TrialScore[]): CandidateResult[] {
  return scores.map((x) => ({
    candidate: x.candidate, accuracy: x.accuracy, joules: plan.joulesOf(x.candidate), trialJoules: x.trialJoules, trialSeconds: x.trialSeconds,
    validationSamples: plan.validationSamples,
  }));
}

/** A candidate not yet scored, priced. */
function unscored(plan: RoundPlan, c: MiroCandidate): Omit<CandidateResult, 'accuracy'> {
  return { candidate: c, joules: plan.joulesOf(c), trialJoules: 0, trialSeconds: 0, validationSamples: plan.validationSamples };
}

interface OpenTrial {
  readonly trainer: Trainer;
  readonly learner: ContinualLearner;
  /** Store reads that filled the trial memory, not yet charged to a segment. */
  unchargedFills: number;
}

export async function runTrials(plan: RoundPlan, env: TrialEnv): Promise<TrialsOutcome> {
  const { options, model, accounting, batch, epochs, busy } = env;
  const scores: TrialScore[] = [];
  const trained = new Map<string, { weights: Float32Array; samples: number }>();
  const reusable = options.reuseChosenTrial && epochs === 1 && !env.strategy.storesLogits;
  const weights = getFlatWeights(model);
  let moot: MootSegment | undefined;
  // Whether a segment's score could still change the choice, everything else scored: arithmetic on counted
  // estimates, not device work.
  const couldChangeChoice = (here: readonly MiroCandidate[]): boolean => scoreCanChangeChoice(resultsOf(plan, scores), { candidates: here.map((c) => unscored(plan, c)) },
    plan.validationSamples, plan.judged, plan.present, options.cutline);
  try {
    for (const [g, group] of plan.groups.entries()) {
      const first = group[0]!;
      const seed = env.seed * 31 + plan.index * 1009 + g;
      // Opened at the group's first trained segment: a moot first segment costs no fills.
      let trial: OpenTrial | undefined;
      const open = (): OpenTrial => {
        const mem = new TrialMemory(env.snapshot, { capacity: first.memory, swapping: plan.next.swapping, swapRatio: first.swapRatio, store: env.store, seed, busyClock: busy });
        const trainer = env.makeTrainer();
        const learner = new ContinualLearner(trainer, env.strategy, mem, { batch, epochs, seed, optimizer: env.optimizer, busyClock: busy });
        return { trainer, learner, unchargedFills: mem.fillReads };
      };
      try {
        let done = 0;
        let scored: number | undefined;
        // A group's candidates differ only in stream buffer (see `trialGroups`): one pass over the largest one's slice,
        // scored at the end of each smaller one's prefix, is each smaller trial (epochs 1: the first pass keeps stream order).
        const prefixes = [...new Set(group.map((c) => c.streamBuffer))].sort((a, b) => a - b);
        for (const sb of prefixes) {
          const n = plan.trialSize(group.find((c) => c.streamBuffer === sb)!);
          const here = group.filter((c) => c.streamBuffer === sb);
          // The round's last trial segment, everything else scored: run it only if its score could change the choice.
          if (n > done && options.skipMootTrials && g === plan.groups.length - 1 && sb === prefixes.at(-1) && !couldChangeChoice(here)) {
            moot = { candidates: here.map((c) => unscored(plan, c)), stepsSaved: Math.ceil((n - done) / batch) * epochs };
            env.logger?.debug({ task: plan.index, skipped: here.map((c) => c.key), stepsSaved: moot.stepsSaved }, 'miro: trial moot, not run');
            break;
          }
          const cost = { flops: 0, hostSeconds: 0, reads: 0 };
          if (n > done) {
            trial ??= open();
            cost.reads += trial.unchargedFills;
            trial.unchargedFills = 0;
            const rows: ClTaskRows = { id: env.task.id, classes: env.task.classes, indices: env.task.indices.subarray(done, n) };
            const timing = await trial.learner.trainTask(env.split, rows, plan.index);
            cost.flops += timing.flops;
            cost.hostSeconds += timing.computeSeconds;
            cost.reads += timing.swapReads;
            env.logger?.debug({ task: plan.index, group: first.key, samples: n - done, steps: timing.steps, flops: timing.flops }, 'miro: trial trained');
            done = n;
            scored = undefined;
          }
          // Stream buffers whose trials are the same length (the `minTrialSteps` floor) share one score.
          if (scored === undefined) {
            const e0 = busy.seconds();
            scored = trial!.trainer.evaluate(env.split, { indices: env.validation }).accuracy;
            cost.hostSeconds += busy.seconds() - e0;
            cost.flops += inferenceFlops(env.work, env.validation.length);
          }
          const work: DeviceWork = { flops: cost.flops, hostSeconds: cost.hostSeconds, storage: { reads: cost.reads, readBytes: cost.reads * env.sampleBytes } };
          const seconds = accounting.account('profiling', work);
          const trialJoules = estimateJoules(accounting.profile, work).joules.total;
          if (reusable) {
            const w = getFlatWeights(model);
            for (const c of here) trained.set(c.key, { weights: w, samples: done });
          }
          // The cost is paid once; the first candidate at this prefix carries it, so the boundary's total is the sum.
          here.forEach((c, k) => scores.push({
            candidate: c, accuracy: scored!, trialJoules: k === 0 ? trialJoules : 0, trialSeconds: k === 0 ? seconds : 0,
            trialFlops: k === 0 ? cost.flops : 0, hostSeconds: k === 0 ? cost.hostSeconds : 0,
          }));
        }
      } finally {
        setFlatWeights(model, weights);
        trial?.trainer.dispose();
      }
    }
  } finally {
    setFlatWeights(model, weights);
  }
  return { scores, moot, trained };
}
