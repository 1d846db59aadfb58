import { DeviceClock, type ComputeWork } from '../profiles/device-clock.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { modelEnergy } from '../profiles/energy-meter.js';

/** What one client's round costs on its device. */
export interface ClientRoundTime {
  /** Device seconds of local training: counted FLOPs / the profile's FLOP/s. */
  computeSeconds: number;
  /** Model download + update upload over the profile's links, plus round trips. */
  commSeconds: number;
  /** computeSeconds + commSeconds: when, after the round opened, its update arrives. */
  seconds: number;
  joules: number;
  joulesByComponent: { compute: number; radio: number; idle: number };
}

/** Bytes of a model or delta frame on the wire (float32 weights plus a small header). */
export function frameBytes(numParams: number): number {
  return numParams * 4 + 64;
}

/**
 * The virtual clock of one client round (FedScale's runtime model): download
 * the model, train, upload the delta; two round trips (assignment + model,
 * result + ack). Compute is the round's counted training FLOPs priced at the
 * profile's FLOP/s (DeviceClock.compute), so the same round takes the same
 * virtual time on any host and under any load; the client's measured CPU
 * seconds ride along as a diagnostic.
 */
export function clientRoundTime(profile: DeviceProfile, work: ComputeWork, numParams: number): ClientRoundTime {
  const clock = new DeviceClock(profile);
  const bytes = frameBytes(numParams);
  const down = clock.network({ downBytes: bytes, roundTrips: 1 });
  const computeSeconds = clock.compute({ flops: Math.max(0, work.flops), hostSeconds: Math.max(0, work.hostSeconds ?? 0) });
  const up = clock.network({ upBytes: bytes, roundTrips: 1 });
  const energy = modelEnergy(clock.snapshot(), profile.power);
  return {
    computeSeconds, commSeconds: down + up, seconds: computeSeconds + down + up,
    joules: energy.total, joulesByComponent: { compute: energy.compute, radio: energy.radio, idle: energy.idle },
  };
}

export interface Completion { clientId: number; seconds: number }

export interface RoundClose {
  /** Counted: the first `target` completions within the deadline, by virtual arrival. */
  participants: number[];
  /** Trained, but arrived after the round closed (over-commitment) or after the deadline. */
  stragglers: number[];
  /** Virtual seconds from round open to close. */
  seconds: number;
  deadlineHit: boolean;
}

/**
 * Who counts: arrivals sorted by virtual time (ties by client id); the round
 * closes at the `target`-th arrival within the deadline, or at the deadline
 * if fewer arrive in time, or at the last arrival with no deadline.
 */
export function closeRound(completions: readonly Completion[], target: number, deadlineSeconds: number): RoundClose {
  const sorted = [...completions].sort((a, b) => a.seconds - b.seconds || a.clientId - b.clientId);
  const inTime = deadlineSeconds > 0 ? sorted.filter((c) => c.seconds <= deadlineSeconds) : sorted;
  const counted = inTime.slice(0, target);
  const countedIds = new Set(counted.map((c) => c.clientId));
  const stragglers = sorted.filter((c) => !countedIds.has(c.clientId)).map((c) => c.clientId);
  let seconds: number;
  let deadlineHit = false;
  if (counted.length >= target) seconds = counted[counted.length - 1]!.seconds;
  else if (deadlineSeconds > 0 && sorted.length > counted.length) {
    seconds = deadlineSeconds;
    deadlineHit = true;
  } else seconds = counted.length > 0 ? counted[counted.length - 1]!.seconds : deadlineSeconds;
  return { participants: counted.map((c) => c.clientId).sort((a, b) => a - b), stragglers: stragglers.sort((a, b) => a - b), seconds, deadlineHit };
}
