/**
 * The continual-learning loop's one plugin family (Avalanche's shape): a
 * plugin implements the hooks it needs, and the loop calls every plugin's
 * hook in the order the plugins were given. Device accounting, Miro's
 * profiler and progress reporting are plugins; the CL method (`ClMethod`)
 * and the memory hierarchy (`ReplayMemory`) are the loop's own parts.
 */
import type { DataSplit } from '../ml/datasets/dataset.js';
import type { BusyClockSource } from './busy-clock.js';

/** A task's training rows: the stream samples the device may train on (held-out rows excluded). */
export interface ClTaskRows {
  /** The task's id (a class-incremental task, or a device's own numbering). */
  readonly id: number;
  /** Classes the task brings. */
  readonly classes: readonly number[];
  /** Rows of the data split this call trains on, in stream order. */
  readonly indices: Int32Array;
}

/** What the loop lets a plugin change at a task boundary. */
export interface ClLoopControl {
  /** Fraction of a task's stream the device keeps and trains on. */
  readonly streamBuffer: number;
  setStreamBuffer(fraction: number): void;
  /** The next call's first `n` kept samples were trained already (e.g. by a Miro trial whose weights the model holds). */
  setPretrainedPrefix(n: number): void;
}

/** A task boundary: the loop is about to train the first chunk of a new task. */
export interface TaskStart {
  readonly loop: ClLoopControl;
  readonly split: DataSplit;
  /** The new task and its available stream rows (this call's rows). */
  readonly task: ClTaskRows;
  /** Position of the task in the device's sequence (0: the first task). */
  readonly index: number;
  /** Held-out rows of `split` for every task seen so far, this one included (never trained on). */
  readonly validation: Int32Array;
}

/** One training step, as the loop reports it. */
export interface StepReport {
  /** Position of the task in the device's sequence. */
  readonly index: number;
  /** Steps done in this call so far (1-based), and planned in all. */
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly streamSamples: number;
  readonly replaySamples: number;
  /** Stream samples the step's forward pass predicted right (with `trackAccuracy`). */
  readonly correct?: number;
}

/**
 * The work of one `trainTask` call (a whole task, or one chunk of one):
 * counted work, which device accounting prices, and host measurements,
 * kept as diagnostics.
 */
export interface TaskTiming {
  /** Position of the task in the device's sequence. */
  task: number;
  /** Whether the call started the task (a boundary: the plugins' `beforeTask` ran). */
  boundary: boolean;
  /** Counted training FLOPs: stream and replay samples through the model (forward + backward) plus the optimizer's steps. */
  flops: number;
  /** Wall seconds of the call's training on this host (diagnostic). */
  trainSeconds: number;
  /**
   * The compute part of training, on the busy clock (`computeClock`): CPU
   * time of the training loop, without time descheduled by other load,
   * storage waits, or inline storage reads. A diagnostic: never priced.
   */
  computeSeconds: number;
  /** The clock `computeSeconds` was measured on. */
  computeClock: BusyClockSource;
  streamSamples: number;
  replaySamples: number;
  steps: number;
  /** Stream-buffer fraction in force for the call. */
  streamBuffer: number;
  /** EM capacity during the call (0 without a memory). */
  emCapacity: number;
  /** Swap ratio during the call (0 without swapping). */
  swapRatio: number;
  /** Stream samples handed to the store (stream writes). */
  persistedSamples: number;
  /** Stored-sample reads the swap policy asked for (what the device reads; see `ReplayMemory.swapReads`). */
  swapReads: number;
  /** Stored-sample reads filling a grown EM at the boundary (e.g. after Miro's resize). */
  fillReads: number;
  /** Leading stream samples trained already (Miro's reused trial, see `setPretrainedPrefix`): observed and stored, not trained again. */
  pretrainedSamples: number;
}

export interface ClPlugin {
  /** For logs and errors. */
  readonly name: string;
  /** A new task starts (the call is a boundary); runs before its first step. May reconfigure the loop or the memory. */
  beforeTask?(start: TaskStart): Promise<void> | void;
  /** After every training step. */
  afterStep?(step: StepReport): void;
  /** After each `trainTask` call (a task, or a chunk of one), with the work it did. */
  afterTask?(timing: TaskTiming): Promise<void> | void;
}
