/**
 * What the next task would cost the device under a candidate configuration,
 * at full scale: the steps it would train x host busy seconds per step
 * (measured), plus its storage I/O, through the device model. A step's cost
 * hardly depends on the EM size (replay is `replay` samples whatever the
 * size), so this is a device-model figure, not a noisy measurement per
 * candidate, and it is known before the candidate's trial runs.
 */
import type { DeviceProfile } from '../../profiles/device-profile.js';
import type { ClStrategy } from '../cl-strategies/cl-strategy.js';
import { estimateJoules } from '../device-accounting.js';
import type { MiroCandidate } from './candidate-space.js';

export interface NextTask {
  profile: DeviceProfile;
  /** Stream samples of the task available for training (held-out ones excluded). */
  availableSamples: number;
  batch: number;
  epochs: number;
  /** Host busy seconds per training step (the main run's, else the trials'). */
  secondsPerStep: number;
  /** Whether the task swaps (second task on, with a store). */
  swapping: boolean;
  /** Whether its stream is written to the store. */
  persist: boolean;
  sampleBytes: number;
  /** The CL strategy: how many samples a step replays for a stream batch and an EM size. */
  strategy: Pick<ClStrategy, 'replayCount'>;
}

/** Stream samples the task keeps under a stream buffer: at least one, at most all. */
export function keptSamples(availableSamples: number, streamBuffer: number): number {
  return Math.max(1, Math.min(availableSamples, Math.ceil(streamBuffer * availableSamples)));
}

export function nextTaskJoules(c: MiroCandidate, next: NextTask): number {
  const kept = keptSamples(next.availableSamples, c.streamBuffer);
  const steps = Math.ceil(kept / next.batch) * next.epochs;
  const reads = next.swapping ? steps * Math.ceil(c.swapRatio * next.strategy.replayCount(next.batch, c.memory)) : 0;
  return estimateJoules(next.profile, {
    computeHostSeconds: steps * next.secondsPerStep,
    storage: {
      reads, readBytes: reads * next.sampleBytes,
      writes: next.persist ? Math.ceil(kept / 1024) : 0, writeBytes: next.persist ? kept * next.sampleBytes : 0,
    },
  }).joules.total;
}
