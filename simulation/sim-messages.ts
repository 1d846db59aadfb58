import type { ClientAppContext } from './client-app.js';
import type { DeviceRuntimeSpec } from './client-job.js';
import type { EnforcerKind } from './budget.js';
import type { ResultMessage, RoundAssignmentMessage } from '../protocol/index.js';

/** One virtual client's work for one assignment: what an agent would receive, and who the client is. */
export interface ClientJob {
  jobId: number;
  /** The engine's id of the client (`c<index>`). */
  clientId: string;
  clientIndex: number;
  /** Device profile name (or JSON file). */
  profile: string;
  /** Share of one core it is held to. */
  budget: number;
  /** Training samples x epochs of this job (the scheduler's work estimate). */
  work: number;
  /** The assignment message, as an agent receives it. */
  assignment: RoundAssignmentMessage;
  /** The client's device: its data, stream, memory hierarchy and profiler. */
  device: DeviceRuntimeSpec;
  /**
   * The number its model was sent to the worker under, when not the
   * assignment's model version (a worker host serving several runs numbers
   * their versions apart).
   */
  model?: number;
}

/** What the client sends back, plus what the worker measured of running it here. */
export interface ClientResult {
  jobId: number;
  clientId: string;
  /** The result message, as an agent sends it. */
  result: ResultMessage;
  /** The update weight frame, as an agent sends it. */
  frame: Uint8Array;
  /** CPU time the client's thread used on this host (diagnostic). */
  cpuSeconds: number;
  /** Wall time of the same work, under the budget. */
  wallSeconds: number;
  /** cpuSeconds / wallSeconds: the CPU share the client really got. */
  share: number;
  enforcer: EnforcerKind;
  /** The worker host that ran it (simulations dispatched over Redis). */
  host?: string;
  /** Memory-hierarchy facts after the round, when it has one. */
  memory?: { emSize: number; storedSamples: number; swapsApplied: number; replaySamples: number };
}

/** The client app every client of a run uses and the settings it is given (each worker loads them once). */
export interface AppSpec extends ClientAppContext {
  /** The client app module's `file:` URL. */
  clientApp: string;
}

export interface EnforcerSpec {
  kind: EnforcerKind;
  root: string | null;
}

// Host -> worker process.
export type HostToWorker =
  | { type: 'init'; workerId: number; spec: AppSpec; enforcer: EnforcerSpec; slots: number }
  | { type: 'model'; version: number; weights: Float32Array }
  /** `keepFrom`: model versions below it are no longer needed by this worker's jobs. */
  | { type: 'job'; job: ClientJob; keepFrom: number }
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
  | { type: 'job'; job: ClientJob; enforcer: EnforcerKind; model: SharedArrayBuffer }
  | { type: 'stop' };
export type SlotToWorker =
  | { type: 'tid'; tid: number | null }
  | { type: 'ready'; initSeconds: number }
  | { type: 'result'; result: ClientResult }
  | { type: 'failed'; jobId: number; message: string };
