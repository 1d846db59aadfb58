/**
 * What the next task would cost the device under a candidate configuration,
 * at full scale: its counted work (the steps it would train, each stream
 * and replay samples through the model plus the optimizer's step; its
 * stream writes and swap reads) priced by the device profile. Known exactly
 * before any trial runs, with no measured time in it.
 */
import { trainingFlops, type TrainingWork } from '../../ml/work-count.js';
import type { DeviceProfile } from '../../profiles/device-profile.js';
import type { ClMethod } from '../cl-methods/cl-method.js';
import { estimateJoules, WRITE_BATCH_SAMPLES, type DeviceWork } from '../device-accounting.js';
import type { MiroCandidate } from './candidate-space.js';

export interface NextTask {
  profile: DeviceProfile;
  /** What a training step costs in FLOPs (model and optimizer). */
  work: TrainingWork;
  /** Stream samples of the task available for training (held-out ones excluded). */
  availableSamples: number;
  batch: number;
  epochs: number;
  /** Whether the task swaps (second task on, with a store). */
  swapping: boolean;
  /** Whether its stream is written to the store. */
  persist: boolean;
  sampleBytes: number;
  /** The CL strategy: how many samples a step replays for a stream batch and an EM size. */
  strategy: Pick<ClMethod, 'replayCount'>;
}

/** Stream samples the task keeps under a stream buffer: at least one, at most all. */
export function keptSamples(availableSamples: number, streamBuffer: number): number {
  return Math.max(1, Math.min(availableSamples, Math.ceil(streamBuffer * availableSamples)));
}

/** Counted FLOPs of one full training step under candidate `c`: a batch of stream samples, its replay, the optimizer. */
export function stepFlops(c: Pick<MiroCandidate, 'memory'>, next: Pick<NextTask, 'work' | 'batch' | 'strategy'>): number {
  return trainingFlops(next.work, next.batch + next.strategy.replayCount(next.batch, c.memory), 1);
}

/** The counted device work of the next task under `c`. */
export function nextTaskWork(c: MiroCandidate, next: NextTask): DeviceWork {
  const kept = keptSamples(next.availableSamples, c.streamBuffer);
  const steps = Math.ceil(kept / next.batch) * next.epochs;
  const replay = next.strategy.replayCount(next.batch, c.memory);
  const reads = next.swapping ? steps * Math.ceil(c.swapRatio * replay) : 0;
  return {
    flops: trainingFlops(next.work, kept * next.epochs + steps * replay, steps),
    storage: {
      reads, readBytes: reads * next.sampleBytes,
      writes: next.persist ? Math.ceil(kept / WRITE_BATCH_SAMPLES) : 0, writeBytes: next.persist ? kept * next.sampleBytes : 0,
    },
  };
}

export function nextTaskJoules(c: MiroCandidate, next: NextTask): number {
  return estimateJoules(next.profile, nextTaskWork(c, next)).joules.total;
}
