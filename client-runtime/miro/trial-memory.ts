import type { DataSplit } from '../../ml/datasets/dataset.js';
import { Rng } from '../../ml/rng.js';
import type { SampleStore } from '../../storage-tier/sample-store.js';
import { hostBusyClock, type BusyClock } from '../busy-clock.js';
import { EpisodicMemory } from '../carm/episodic-memory.js';
import { fillClassBalanced } from '../carm/memory-fill.js';
import type { MemorySnapshot } from '../carm/memory-knobs.js';
import type { ReplayMemory } from '../continual-learner.js';
import type { ReplayedSampleInfo } from '../carm/swap-policy.js';

export interface TrialMemoryOptions {
  /** EM slots of the trial: the candidate's EM size (see `miro-plugin.ts` on why it is not scaled down). */
  capacity: number;
  /** Whether the trial swaps (second task on, with a store). */
  swapping: boolean;
  swapRatio: number;
  /** The device's sample store, read-only; null without one. Swaps read it, and a candidate EM larger than the snapshot is filled from it. */
  store: SampleStore | null;
  seed: number;
  /** The clock the trial's host compute diagnostic is measured on; inline store reads are timed on it too. Default: this thread's CPU time. */
  busyClock?: BusyClock;
}

/**
 * A profiling trial's memory: a scaled-down copy of the device's EM
 * (class-balanced shrink of the snapshot), with CarM's swapping done inline
 * (random policy) from the read-only store. It never persists anything:
 * the device's real memory hierarchy is untouched by trials. New stream
 * samples enter class-balanced, which ends each task with the same share of
 * new classes that reservoir sampling at full scale does (1/(tasks seen)).
 */
export class TrialMemory implements ReplayMemory {
  readonly memory: EpisodicMemory;
  readonly swapping: boolean;
  readonly policyNeedsPredictions = false;
  readonly persistedSamples = 0;
  readonly swapRatio: number;
  readonly #store: SampleStore | null;
  readonly #rng: Rng;
  readonly #busy: BusyClock;
  #reads = 0;
  #waitSeconds = 0;
  #busySeconds = 0;

  constructor(snapshot: MemorySnapshot, options: TrialMemoryOptions) {
    const o = snapshot.options;
    const n = snapshot.labels.length;
    this.memory = new EpisodicMemory({
      capacity: Math.max(n, options.capacity), featureSize: o.featureSize, featureType: o.featureType, numClasses: o.numClasses,
      logitsSize: o.logitsSize, sampling: 'class-balanced', seed: options.seed,
    });
    for (let s = 0; s < n; s++) this.memory.observe(snapshot.features[s]!, snapshot.labels[s]!, snapshot.tasks[s]!, snapshot.logits[s] ?? undefined);
    this.#rng = new Rng(options.seed ^ 0x2545f491);
    if (options.capacity !== this.memory.capacity) this.memory.resize(options.capacity, this.#rng);
    this.#store = options.store;
    this.#busy = options.busyClock ?? hostBusyClock();
    this.fillReads = this.#fill();
    this.swapping = options.swapping && options.store !== null && options.swapRatio > 0;
    this.swapRatio = this.swapping ? options.swapRatio : 0;
  }

  /** Stored samples read to fill the EM up to the candidate's size (as `MemoryHierarchy.resizeMemory` does on a grow). */
  readonly fillReads: number;

  /**
   * Fills free slots class-balanced from the store, so that a larger
   * candidate EM holds past samples, as the device's EM would after the
   * resize, rather than filling up with the new task's stream.
   */
  #fill(): number {
    return this.#store === null ? 0 : fillClassBalanced(this.memory, this.#store, this.#rng);
  }

  get swapReads(): number {
    return this.#reads;
  }

  /** Host seconds spent reading the store (accounted as storage, not compute). */
  get storageWaitSeconds(): number {
    return this.#waitSeconds;
  }

  /** Busy-clock seconds of the inline store reads (storage, not compute). */
  get storageBusySeconds(): number {
    return this.#busySeconds;
  }

  memorySplit(): DataSplit {
    return this.memory.asSplit();
  }

  stepBoundary(): number {
    return 0;
  }

  onStreamBatch(split: DataSplit, indices: ArrayLike<number>, task: number, logits: Float32Array | null): void {
    const fs = this.memory.featureSize;
    const nc = this.memory.numClasses;
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r]!;
      const l = logits !== null && this.memory.logitsSize > 0 ? logits.subarray(r * nc, (r + 1) * nc) : undefined;
      this.memory.observe(split.features.subarray(i * fs, (i + 1) * fs), split.labels[i]!, task, l);
    }
  }

  afterStep(replayed: readonly ReplayedSampleInfo[]): void {
    if (!this.swapping || replayed.length === 0) return;
    const k = Math.min(replayed.length, Math.ceil(this.swapRatio * replayed.length));
    const picked = this.#rng.shuffle([...replayed]).slice(0, k);
    const t0 = performance.now();
    const b0 = this.#busy.seconds();
    const rng = (): number => this.#rng.next();
    const samples = this.#store!.fetchManyRandomOfClasses(picked.map((p) => p.label), rng);
    this.#reads += picked.length;
    samples.forEach((s, i) => {
      if (s === null) return;
      const ls = this.memory.logitsSize;
      this.memory.replace(picked[i]!.slot, s.features, s.label, s.task, s.logits !== null && s.logits.length === ls ? s.logits : null);
    });
    this.#waitSeconds += (performance.now() - t0) / 1000;
    this.#busySeconds += this.#busy.seconds() - b0;
  }

  async endTask(): Promise<void> {
    // Nothing to commit: a trial persists nothing.
  }
}
