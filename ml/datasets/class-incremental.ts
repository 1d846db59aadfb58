import { StrataError } from '../../common/strata-error.js';
import { Rng } from '../rng.js';
import type { Dataset, DataSplit } from './dataset.js';
import { concatIndices, indicesOfClasses } from './dataset.js';

/** One task of a class-incremental scenario: its classes and sample indices. */
export interface ClTask {
  id: number;
  classes: number[];
  /** Indices into `dataset.train`, shuffled by the scenario seed. */
  trainIndices: Int32Array;
  /** Indices into `dataset.test`. */
  testIndices: Int32Array;
}

export interface ClassIncrementalScenario {
  name: string;
  dataset: Dataset;
  tasks: ClTask[];
  /** Class order after the seeded shuffle. */
  classOrder: number[];
}

export interface ScenarioOptions {
  /** Default 5 (split-MNIST: 5 tasks of 2 classes). */
  tasks?: number;
  /** Seeds the class order and the within-task sample order; default 1. */
  seed?: number;
  /** Keep classes in natural order (0,1 | 2,3 | ...) regardless of seed; default false. */
  fixedClassOrder?: boolean;
}

/**
 * `split-<dataset>`: the classes are dealt into `tasks` groups (class-
 * incremental: one head over all classes, no task labels at test time).
 */
export function splitClassIncremental(dataset: Dataset, options: ScenarioOptions = {}): ClassIncrementalScenario {
  const nTasks = options.tasks ?? 5;
  if (!Number.isInteger(nTasks) || nTasks < 1 || nTasks > dataset.numClasses) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `tasks must be 1..${dataset.numClasses} for ${dataset.name}, got ${nTasks}`, { option: 'tasks' });
  }
  const rng = new Rng(options.seed ?? 1);
  const classOrder = Array.from({ length: dataset.numClasses }, (_, i) => i);
  if (options.fixedClassOrder !== true) rng.shuffle(classOrder);
  const perTask = Math.floor(dataset.numClasses / nTasks);
  const extra = dataset.numClasses % nTasks;
  const tasks: ClTask[] = [];
  let at = 0;
  for (let t = 0; t < nTasks; t++) {
    const n = perTask + (t < extra ? 1 : 0);
    const classes = classOrder.slice(at, at + n);
    at += n;
    const trainIndices = rng.shuffle(indicesOfClasses(dataset.train, classes));
    tasks.push({ id: t, classes, trainIndices, testIndices: indicesOfClasses(dataset.test, classes) });
  }
  return { name: `split-${dataset.name}`, dataset, tasks, classOrder };
}

/** Test indices of every class seen up to and including task `upTo`. */
export function seenTestIndices(scenario: ClassIncrementalScenario, upTo: number): Int32Array {
  return concatIndices(scenario.tasks.slice(0, upTo + 1).map((t) => t.testIndices));
}

export type { DataSplit };
