import { StrataError } from '../common/strata-error.js';
import type { DataSplit } from '../ml/datasets/dataset.js';

/**
 * When a device's samples arrive, round by round. A device learns from its
 * own stream: what arrived since it last trained.
 * - `whole`: the device holds a fixed local data set and every round learns
 *   from all of it (classic federated learning).
 * - `chunks`: each round it trains, the next `samplesPerRound` samples of
 *   its stream (cycling through its data when it runs out).
 * - `tasks`: class-incremental: task t's classes arrive during rounds
 *   t*R+1 .. (t+1)*R (R = `roundsPerTask`), in equal slices; after the last
 *   task its slices repeat. Slices of rounds the device was not picked for
 *   still arrive: it stores and remembers them without training on them.
 */
export type StreamSchedule =
  | { kind: 'whole' }
  | { kind: 'chunks'; samplesPerRound: number }
  | { kind: 'tasks'; tasks: readonly (readonly number[])[]; roundsPerTask: number };

/** Some of the device's samples (rows of its split) and the classes among them. */
export interface StreamChunk {
  indices: Int32Array;
  classes: number[];
}

/** What a round brings: the chunk to train on, and earlier arrivals to take in without training. */
export interface RoundArrivals {
  train: StreamChunk;
  backlog: StreamChunk[];
}

/** Where a device is in its stream (persisted with the device's state). */
export interface StreamPosition {
  /** `chunks`: samples taken so far. */
  taken: number;
  /** The last round whose arrivals the device took in (0: none). */
  lastRound: number;
}

export const STREAM_START: StreamPosition = Object.freeze({ taken: 0, lastRound: 0 });

/**
 * What a device runtime trains from: its data on a schedule (`DeviceStream`)
 * or samples arriving live (`LiveStream`). A round opens it at the device's
 * position and gets the split its rows index, what the round brings, and
 * the held-out rows.
 */
export interface SampleStream {
  readonly featureType: 'uint8' | 'float32';
  open(roundId: number, from: StreamPosition, validation: readonly number[]): StreamRound;
}

/** One round's view of a stream. */
export interface StreamRound {
  /** The split this round's rows index. */
  split: DataSplit;
  arrivals: RoundArrivals;
  /** The device's position once the round is done. */
  next: StreamPosition;
  /** Held-out rows of `split` (Miro's validation), over every task seen. */
  validation: Int32Array;
  /** Holds rows of `split` out for good; returns the held-out rows now. */
  holdOut(rows: Int32Array): Int32Array;
  /** What the device state keeps of the held-out rows (rows of a fixed split; a live stream keeps its own). */
  keptValidation(): number[];
  /** The round succeeded and its samples are in the memory hierarchy. */
  commit(): void;
}

/**
 * A device's samples in stream order (`indices`: rows of `split`) under a
 * schedule. Pure: `arrivals` says what round `roundId` brings from a
 * position and the position after it, so a simulation's host can size a
 * client's work with the very function the client trains from.
 */
export class DeviceStream implements SampleStream {
  readonly split: DataSplit;
  readonly indices: Int32Array;
  readonly schedule: StreamSchedule;
  /** `tasks`: the device's samples of each task, in stream order. */
  readonly #byTask: Int32Array[];

  constructor(split: DataSplit, indices: Int32Array, schedule: StreamSchedule) {
    if (indices.length === 0) throw new StrataError('STRATA_ERR_DATASET_EMPTY', 'the device holds no samples');
    this.split = split;
    this.indices = indices;
    this.schedule = schedule;
    if (schedule.kind === 'chunks' && !(Number.isSafeInteger(schedule.samplesPerRound) && schedule.samplesPerRound >= 1)) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `samplesPerRound must be a positive integer (got ${schedule.samplesPerRound})`, { option: 'samplesPerRound' });
    }
    if (schedule.kind === 'tasks' && !(schedule.tasks.length >= 1 && Number.isSafeInteger(schedule.roundsPerTask) && schedule.roundsPerTask >= 1)) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', 'a task schedule needs at least one task and roundsPerTask >= 1', { option: 'roundsPerTask' });
    }
    this.#byTask = schedule.kind === 'tasks'
      ? schedule.tasks.map((classes) => {
        const want = new Set(classes);
        return indices.filter((i) => want.has(split.labels[i]!));
      })
      : [];
  }

  get featureType(): 'uint8' | 'float32' {
    return this.split.features instanceof Uint8Array ? 'uint8' : 'float32';
  }

  open(roundId: number, from: StreamPosition, validation: readonly number[]): StreamRound {
    const { arrivals, next } = this.arrivals(roundId, from);
    let held = Int32Array.from(validation);
    return {
      split: this.split, arrivals, next, validation: held,
      holdOut: (rows) => (held = Int32Array.from([...held, ...rows])),
      keptValidation: () => Array.from(held),
      commit: () => undefined,
    };
  }

  /** What round `roundId` brings to a device at `from`, and where that leaves it. */
  arrivals(roundId: number, from: StreamPosition): { arrivals: RoundArrivals; next: StreamPosition } {
    const s = this.schedule;
    switch (s.kind) {
      case 'whole':
        return { arrivals: { train: this.#chunk(this.indices), backlog: [] }, next: { taken: from.taken, lastRound: roundId } };
      case 'chunks': {
        const n = Math.min(s.samplesPerRound, this.indices.length);
        const start = from.taken % this.indices.length;
        const out = new Int32Array(n);
        for (let k = 0; k < n; k++) out[k] = this.indices[(start + k) % this.indices.length]!;
        return { arrivals: { train: this.#chunk(out), backlog: [] }, next: { taken: from.taken + n, lastRound: roundId } };
      }
      case 'tasks': {
        const backlog: StreamChunk[] = [];
        for (let r = from.lastRound + 1; r < roundId; r++) {
          const c = this.#slice(r);
          if (c.indices.length > 0) backlog.push(c);
        }
        return { arrivals: { train: this.#slice(roundId), backlog }, next: { taken: from.taken, lastRound: Math.max(from.lastRound, roundId) } };
      }
    }
  }

  /** The number of samples round `roundId` trains on (a host's work estimate: the same from any position). */
  trainSamples(roundId: number): number {
    const s = this.schedule;
    if (s.kind === 'whole') return this.indices.length;
    if (s.kind === 'chunks') return Math.min(s.samplesPerRound, this.indices.length);
    return this.#sliceBounds(roundId).length;
  }

  /** `tasks`: the task whose slices round `roundId` delivers (the last task's repeat after the schedule). */
  taskOfRound(roundId: number): number {
    if (this.schedule.kind !== 'tasks') return 0;
    return Math.min(this.schedule.tasks.length - 1, Math.floor((Math.max(1, roundId) - 1) / this.schedule.roundsPerTask));
  }

  #sliceBounds(roundId: number): { task: number; start: number; end: number; length: number } {
    const s = this.schedule as Extract<StreamSchedule, { kind: 'tasks' }>;
    const task = this.taskOfRound(roundId);
    const R = s.roundsPerTask;
    const k = (Math.max(1, roundId) - 1 - task * R) % R;
    const n = this.#byTask[task]!.length;
    const start = Math.floor((k * n) / R);
    const end = Math.floor(((k + 1) * n) / R);
    return { task, start, end, length: end - start };
  }

  #slice(roundId: number): StreamChunk {
    const b = this.#sliceBounds(roundId);
    return this.#chunk(this.#byTask[b.task]!.subarray(b.start, b.end));
  }

  #chunk(indices: Int32Array): StreamChunk {
    const seen = new Set<number>();
    for (let k = 0; k < indices.length; k++) seen.add(this.split.labels[indices[k]!]!);
    return { indices, classes: [...seen].sort((a, b) => a - b) };
  }
}
