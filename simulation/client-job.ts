import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { ClMethodFactory } from '../client-runtime/cl-methods/cl-method.js';
import { DeviceRuntime, type DeviceMemoryOptions } from '../client-runtime/device-runtime.js';
import { DeviceStream, type StreamSchedule } from '../client-runtime/device-stream.js';
import type { MiroOptions } from '../client-runtime/miro/miro-options.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { loadProfile } from '../profiles/profile-loader.js';
import { encodeWeightFrame } from '../protocol/index.js';
import type { EnforcerKind } from './budget.js';
import type { ClientJob, ClientResult } from './sim-messages.js';
import { DutyCycleThrottle, threadCpuSeconds } from './thread-cpu.js';

/** A virtual client's device, as its job describes it (an agent gets the same from its flags). */
export interface DeviceRuntimeSpec {
  /** The client's samples (rows of the train split) in stream order, and when they arrive. */
  indices: Int32Array;
  schedule: StreamSchedule;
  /** Its own directory under the run directory (sample store, state); '' when it keeps nothing between rounds. */
  dir: string;
  memory: DeviceMemoryOptions;
  profiler: 'off' | 'miro';
  miro?: MiroOptions;
}

/** What a slot thread (or a naive client process) holds for its whole life: one model, the shared training split. */
export interface SlotContext {
  model: tf.LayersModel;
  train: DataSplit;
  featureSize: number;
  numClasses: number;
  scale: number;
  seed: number;
  /** The client app's CL methods (default: the built-ins). */
  methods?: readonly ClMethodFactory[];
}

/**
 * Runs one virtual client's assignment on the calling thread, through the
 * device runtime an agent runs, and measures it here: CPU time of this
 * thread and wall time, so `share` is the CPU share the client really got
 * under its budget. Under `duty` the thread paces itself after each step;
 * under cgroups the kernel does (the caller has set the quota).
 */
export async function runClientJob(ctx: SlotContext, job: ClientJob, global: Float32Array, enforcer: EnforcerKind): Promise<ClientResult> {
  const throttle = enforcer === 'duty' ? new DutyCycleThrottle(job.budget) : undefined;
  const cpu0 = threadCpuSeconds();
  const wall0 = performance.now();
  throttle?.start();
  const d = job.device;
  if (d.dir !== '') mkdirSync(d.dir, { recursive: true });
  const runtime = new DeviceRuntime({
    clientId: job.clientId, profile: loadProfile(job.profile), model: ctx.model, stream: new DeviceStream(ctx.train, d.indices, d.schedule),
    featureSize: ctx.featureSize, numClasses: ctx.numClasses, scale: ctx.scale,
    storeFile: d.dir === '' ? null : path.join(d.dir, 'samples.sqlite'), memory: d.memory, profiler: d.profiler,
    ...(d.miro !== undefined ? { miro: d.miro } : {}), seed: ctx.seed, ...(ctx.methods !== undefined ? { methods: ctx.methods } : {}),
    ...(throttle !== undefined ? { afterStep: () => throttle.pace() } : {}),
  });
  const a = job.assignment;
  let outcome;
  let memory;
  try {
    outcome = await runtime.trainRound(a, global);
  } finally {
    memory = await runtime.close();
  }
  const frame = encodeWeightFrame({ kind: 'delta', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: outcome.metrics.numSamples }, outcome.delta);
  const cpuSeconds = threadCpuSeconds() - cpu0;
  const wallSeconds = (performance.now() - wall0) / 1000;
  return {
    jobId: job.jobId, clientId: job.clientId,
    result: {
      type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: { ...outcome.metrics, hostSeconds: wallSeconds },
      joules: outcome.joules, energySource: outcome.energySource, device: outcome.device,
    },
    frame: new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength),
    cpuSeconds, wallSeconds, share: wallSeconds > 0 ? cpuSeconds / wallSeconds : 0, enforcer,
    ...(memory !== null ? { memory: { emSize: memory.emSize, storedSamples: memory.storedSamples, swapsApplied: memory.swap?.applied ?? 0, replaySamples: outcome.replaySamples } } : {}),
  };
}
