import type { EnforcerKind } from './budget.js';

/** Local training settings of a round (the same for every client). */
export interface TrainSettings {
  epochs: number;
  batch: number;
  optimizer: 'adam' | 'sgd';
  learningRate: number;
  /** FedProx: adds mu/2 ||w - w_global||^2 to the local loss. */
  fedproxMu?: number;
}

/** With `--cl`: what the client's memory hierarchy needs this round. */
export interface ClJobSpec {
  /** Index of the task the client's stream is in. */
  task: number;
  tasks: number;
  classes: number[];
  /** The client's own directory under the run dir: its SQLite store and EM snapshot. */
  dir: string;
  method: 'finetune' | 'er' | 'derpp';
  memory: number;
  replay: number;
  swap: 'async' | 'sync' | 'off';
  swapRatio: number;
  /**
   * Stream samples that arrived on the device in rounds it was not selected
   * (a device's stream does not wait for the coordinator): written to its
   * store and offered to its EM before it trains, without training on them.
   */
  backlog: { task: number; indices: Int32Array }[];
}

/** One client's local training in one round. */
export interface ClientJob {
  jobId: number;
  round: number;
  clientId: number;
  profile: string;
  /** Rows of the training split this client trains on this round. */
  indices: Int32Array;
  /** Share of one core. */
  budget: number;
  /** Seeds the client's shuffle: the same for a client and round in every mode. */
  seed: number;
  train: TrainSettings;
  cl?: ClJobSpec;
}

export interface ClientResult {
  jobId: number;
  round: number;
  clientId: number;
  /** Local weights minus the global model they started from. */
  delta: Float32Array;
  numSamples: number;
  loss: number;
  /** Counted training FLOPs (see `ml/work-count.ts`): what the virtual clock prices. */
  flops: number;
  /** CPU time the client's thread used (training, setting and reading weights): a diagnostic. */
  cpuSeconds: number;
  /** Wall time of the same work, under the budget. */
  wallSeconds: number;
  /** cpuSeconds / wallSeconds: the CPU share the client really got. */
  share: number;
  enforcer: EnforcerKind;
  /** Memory-hierarchy facts (`--cl`). */
  cl?: { emSize: number; storedSamples: number; swapsApplied: number; replaySamples: number };
}

/** The data set and model every client of a run uses. */
export interface ModelSpec {
  dataset: string;
  model: 'mlp' | 'cnn';
  seed: number;
  numParams: number;
}

export interface EnforcerSpec {
  kind: EnforcerKind;
  root: string | null;
}

// Host -> worker process.
export type HostToWorker =
  | { type: 'init'; workerId: number; spec: ModelSpec; enforcer: EnforcerSpec; slots: number }
  | { type: 'model'; round: number; weights: Float32Array }
  | { type: 'job'; job: ClientJob }
  | { type: 'shutdown' };

// Worker process -> host.
export type WorkerToHost =
  | { type: 'ready'; pid: number; loadSeconds: number }
  | { type: 'started'; jobId: number; slot: number }
  | { type: 'result'; result: ClientResult; slot: number }
  | { type: 'failed'; jobId: number; message: string }
  | { type: 'note'; message: string };

// Worker process main thread <-> slot thread.
export type WorkerToSlot =
  | { type: 'job'; job: ClientJob; enforcer: EnforcerKind }
  | { type: 'stop' };
export type SlotToWorker =
  | { type: 'tid'; tid: number | null }
  | { type: 'ready'; initSeconds: number }
  | { type: 'result'; result: ClientResult }
  | { type: 'failed'; jobId: number; message: string };
