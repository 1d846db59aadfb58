import type { LossTerm } from '../../ml/trainer.js';
import type { ClTaskRows } from '../cl-plugin.js';

/** What a strategy sees of the step it is shaping. */
export interface ComposedBatch {
  /** Rows of the task's stream in this batch (indices into the data set's train split). */
  streamIndices: Int32Array;
  /** Replay-memory slots in this batch (after the stream rows). */
  replaySlots: Int32Array;
}

export interface StepContext {
  task: ClTaskRows;
  epoch: number;
  epochs: number;
  /** Stored logits of the replayed slots, row-major (DER++), or null. */
  replayLogits: Float32Array | null;
}

/**
 * A continual-learning method: a few hooks over the shared training loop
 * (Avalanche's shape). The memory hierarchy is the loop's plugin, not the
 * method's: methods only say how many replay samples they want and how
 * the loss treats them. Made for one round (or one `strata cl` run) by its
 * `ClMethodFactory`.
 */
export interface ClMethod {
  readonly name: string;
  /** Whether the method replays from the episodic memory at all. */
  readonly usesMemory: boolean;
  /** Whether samples must carry the logits seen when they were stored. */
  readonly storesLogits: boolean;
  beforeTask?(task: ClTaskRows): void;
  /** How many memory samples to replay with `streamCount` stream samples. */
  replayCount(streamCount: number, memorySize: number): number;
  /** An extra loss term for this batch, if the method adds one. */
  lossTerm?(batch: ComposedBatch, ctx: StepContext): LossTerm | undefined;
  afterStep?(batch: ComposedBatch, ctx: StepContext): void;
  afterTask?(task: ClTaskRows): void;
}

/** What a round asks of its CL method. */
export interface ClMethodSettings {
  /** Memory samples to replay per batch (the training config's replay ratio x its batch size). */
  replay: number;
  batchSize: number;
}

/**
 * A CL method by name: the coordinator's training config names one
 * (`method`), and each device makes it from the factories it has. Give a
 * device runtime, an agent or a simulation's client app your own factory
 * beside the built-ins (`BUILTIN_CL_METHODS`) and name it in the config.
 */
export interface ClMethodFactory {
  readonly name: string;
  create(settings: ClMethodSettings): ClMethod;
}
