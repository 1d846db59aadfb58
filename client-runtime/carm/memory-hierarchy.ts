import path from 'node:path';
import type { Logger } from 'pino';
import { StrataError } from '../../common/strata-error.js';
import type { DataSplit } from '../../ml/datasets/dataset.js';
import type { Rng } from '../../ml/rng.js';
import type { ReplayMemory } from '../continual-learner.js';
import { EpisodicMemory, type MemorySampling } from './episodic-memory.js';
import { SampleStore } from '../../storage-tier/sample-store.js';
import { fillClassBalanced } from './memory-fill.js';
import { snapshotMemory, type MemoryKnobs, type MemorySnapshot } from './memory-knobs.js';
import { InlineStreamWriter } from './inline-stream-writer.js';
import { StreamWriter, type StreamFlushResult, type StreamSample } from './stream-writer.js';

/** Where stream samples go: the background writer thread, or inline with `--swap sync`. */
interface SampleWriter {
  write(samples: readonly StreamSample[]): void;
  flush(): Promise<StreamFlushResult>;
  close(): Promise<void>;
}
import { SwapManager, type SwapMode, type SwapStats } from './swap-manager.js';
import type { ReplayedSampleInfo, SwapPolicyName } from './swap-policy.js';

export type StorageBudget = 'all' | 'none' | number;

export interface MemoryHierarchyOptions {
  /** Episodic-memory slots in RAM. */
  memorySize: number;
  featureSize: number;
  featureType: 'uint8' | 'float32';
  numClasses: number;
  /** DER++: keep each sample's logits (in RAM and in storage). */
  storesLogits: boolean;
  /** Default `reservoir`. */
  sampling?: MemorySampling;
  /** `none`: RAM only (plain ER). `all` or N samples: every past sample (up to N) in SQLite. */
  storage: StorageBudget;
  swap: SwapMode;
  swapRatio: number;
  policy: SwapPolicyName;
  /** Per stored-sample read latency the swap reader really waits (slow SD cards). Default 0. */
  storageLatencyMs?: number;
  /** The device's sample store; default `samples.sqlite` in `dir`. */
  storeFile?: string;
  dir: string;
  seed: number;
  logger?: Logger;
}

export interface MemoryHierarchyStats {
  emBytes: number;
  emSize: number;
  emCapacity: number;
  storedSamples: number;
  storeBytes: number;
  swap: SwapStats | null;
}

/**
 * CarM's memory hierarchy as one plugin of the training loop: the RAM
 * episodic memory, the background writer that persists every stream sample
 * to the SQLite store, and the swap manager that keeps replacing replayed
 * EM samples with stored ones of the same class. Its `MemoryKnobs` are what
 * Miro turns at task boundaries.
 */
export class MemoryHierarchy implements ReplayMemory, MemoryKnobs {
  readonly memory: EpisodicMemory;
  readonly options: Readonly<MemoryHierarchyOptions>;
  readonly #writer: SampleWriter | undefined;
  #swap: SwapManager | undefined;
  #swapRatio: number;
  /** Stats of swap managers replaced by `setSwapRatio`, folded into `stats()`. */
  #retiredSwap: SwapStats[] = [];
  #storeCounts = { stored: 0, bytes: 0 };
  #persisted = 0;
  #filledReads = 0;

  private constructor(options: MemoryHierarchyOptions, memory: EpisodicMemory, writer: SampleWriter | undefined, swap: SwapManager | undefined) {
    this.options = Object.freeze({ ...options });
    this.memory = memory;
    this.#writer = writer;
    this.#swap = swap;
    this.#swapRatio = options.swapRatio;
  }

  static async open(options: MemoryHierarchyOptions): Promise<MemoryHierarchy> {
    if (options.storage === 'none' && options.swap !== 'off') {
      throw new StrataError('STRATA_ERR_BAD_FLAG', `--swap ${options.swap} needs a sample store; with --storage none use --swap off`, { flag: '--swap' });
    }
    const memory = new EpisodicMemory({
      capacity: options.memorySize,
      featureSize: options.featureSize,
      featureType: options.featureType,
      numClasses: options.numClasses,
      logitsSize: options.storesLogits ? options.numClasses : 0,
      sampling: options.sampling ?? 'reservoir',
      seed: options.seed,
    });
    const storeFile = options.storeFile ?? path.join(options.dir, 'samples.sqlite');
    let writer: SampleWriter | undefined;
    let swap: SwapManager | undefined;
    if (options.storage !== 'none') {
      // Synchronous swapping reads on the training thread, and so does the writing: nothing in the run hangs on thread timing.
      writer = options.swap === 'sync'
        ? InlineStreamWriter.open({ storeFile, capacity: options.storage })
        : await StreamWriter.start({ storeFile, capacity: options.storage, featureSize: options.featureSize, featureType: options.featureType });
      // The reader opens the store read-only, so the file must exist first.
      await writer.flush();
      if (options.swap !== 'off') {
        swap = await SwapManager.start({
          mode: options.swap, ratio: options.swapRatio, policy: options.policy, storeFile, memory,
          storageLatencyMs: options.storageLatencyMs ?? 0, seed: options.seed,
        });
      }
    }
    options.logger?.info({ memorySize: options.memorySize, storage: options.storage, swap: options.swap, policy: options.policy, storeFile: writer ? storeFile : null }, 'memory hierarchy ready');
    return new MemoryHierarchy({ ...options, storeFile }, memory, writer, swap);
  }

  /** Whether swaps run (they start from the second task). */
  get swapping(): boolean {
    return this.#swap !== undefined;
  }

  /** Whether the swap policy wants per-sample correctness and entropy. */
  get policyNeedsPredictions(): boolean {
    return this.#swap !== undefined && this.options.policy !== 'random';
  }

  /** A view over the RAM samples, for building batches. */
  memorySplit(): DataSplit {
    return this.memory.asSplit();
  }

  /** Stream samples just trained on: offered to the EM, and (first pass only) persisted. */
  onStreamBatch(split: DataSplit, indices: ArrayLike<number>, task: number, logits: Float32Array | null, persist: boolean): void {
    const fs = this.options.featureSize;
    const nc = this.options.numClasses;
    const toWrite: { features: Uint8Array | Float32Array; label: number; task: number; logits?: Float32Array }[] = [];
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r]!;
      const features = split.features.subarray(i * fs, (i + 1) * fs);
      const label = split.labels[i]!;
      const l = logits !== null && this.options.storesLogits ? logits.subarray(r * nc, (r + 1) * nc) : undefined;
      this.memory.observe(features, label, task, l);
      if (persist && this.#writer !== undefined) toWrite.push(l === undefined ? { features, label, task } : { features, label, task, logits: l });
    }
    if (toWrite.length > 0) {
      this.#writer!.write(toWrite);
      this.#persisted += toWrite.length;
    }
  }

  /** After a step of the second task or later: ask for swaps of the replayed slots. */
  afterStep(replayed: readonly ReplayedSampleInfo[], epochProgress: number): void {
    this.#swap?.afterStep(replayed, epochProgress);
  }

  /** At a step boundary: apply the swaps delivered so far (never waits). */
  stepBoundary(): number {
    return this.#swap?.applyReady() ?? 0;
  }

  /** End of a task: everything the task streamed is committed to the store. */
  async endTask(): Promise<void> {
    if (this.#writer !== undefined) {
      const r = await this.#writer.flush();
      this.#storeCounts = { stored: r.stored, bytes: r.bytes };
    }
  }

  /** The sample store file, or null with `storage: 'none'`. */
  get storeFile(): string | null {
    return this.#writer === undefined ? null : this.options.storeFile ?? null;
  }

  /** EM slots in RAM now. */
  get capacity(): number {
    return this.memory.capacity;
  }

  /** Whether swaps can run at all (a store and a swap mode); they start from the second task. */
  get canSwap(): boolean {
    return this.options.storage !== 'none' && this.options.swap !== 'off';
  }

  /** Whether stream samples are written to the store. */
  get persists(): boolean {
    return this.#writer !== undefined;
  }

  snapshot(): MemorySnapshot {
    return snapshotMemory(this.memory);
  }

  /** A read-only connection to the store (the caller closes it), or null with `storage: 'none'`. */
  openStoreReadOnly(): SampleStore | null {
    const file = this.storeFile;
    return file === null ? null : SampleStore.openReadOnly(file);
  }

  /** Payload bytes of one stored sample (features, plus logits for DER++). */
  get sampleBytes(): number {
    const o = this.options;
    return o.featureSize * (o.featureType === 'uint8' ? 1 : 4) + (o.storesLogits ? o.numClasses * 4 : 0);
  }

  get persistedSamples(): number {
    return this.#persisted;
  }

  /**
   * Stored-sample reads the swap policy asked for: requested, plus those the
   * async worker skipped because `maxPendingSwaps` were in flight. The skips
   * are this host's: its training outpaces the real read latency it waits
   * (a device trains slower), so counting them keeps the device's counted
   * work the same on any host and under any load.
   */
  get swapReads(): number {
    return this.#allSwapStats().reduce((n, s) => n + s.requested + s.skipped, 0);
  }

  get storageWaitSeconds(): number {
    return this.#allSwapStats().reduce((n, s) => n + s.syncWaitMs, 0) / 1000;
  }

  get swapRatio(): number {
    return this.#swap === undefined ? 0 : this.#swapRatio;
  }

  /** The swap ratio set, in force once swaps run (they start from the second task). */
  get configuredSwapRatio(): number {
    return this.#swapRatio;
  }

  /**
   * Miro, at a task boundary: a new EM capacity. Shrinking keeps a
   * class-balanced subset; swaps still in flight for renumbered slots are
   * dropped as stale by the swap manager (slot generations change).
   */
  resizeMemory(capacity: number, rng: Rng): { filled: number } {
    if (capacity === this.memory.capacity) return { filled: 0 };
    const grows = capacity > this.memory.capacity;
    this.memory.resize(capacity, rng);
    return { filled: grows ? this.#fillFromStore(rng) : 0 };
  }

  /**
   * After a grow: fill the free slots with random stored samples, one class
   * at a time from the class with the fewest slots (the store holds every
   * past sample, so a grown EM need not wait for the next stream to fill,
   * which would tilt it towards the new classes). Returns the samples read.
   */
  #fillFromStore(rng: Rng): number {
    const file = this.storeFile;
    if (file === null || this.memory.size >= this.memory.capacity) return 0;
    const store = SampleStore.openReadOnly(file);
    try {
      const filled = fillClassBalanced(this.memory, store, rng);
      this.#filledReads += filled;
      return filled;
    } finally {
      store.close();
    }
  }

  /** Stored samples read to fill a grown EM. */
  get fillReads(): number {
    return this.#filledReads;
  }

  /**
   * Miro, at a task boundary: a new swap ratio. The swap manager's options
   * are fixed at start, so it is drained, closed and restarted with the new
   * ratio; its statistics are kept.
   */
  async setSwapRatio(ratio: number): Promise<void> {
    if (this.#swap === undefined || ratio === this.#swapRatio) {
      this.#swapRatio = ratio;
      return;
    }
    const old = this.#swap;
    await old.drain();
    this.#retiredSwap.push(old.stats());
    await old.close();
    this.#swap = undefined;
    const o = this.options;
    this.#swap = await SwapManager.start({
      mode: o.swap, ratio, policy: o.policy, storeFile: o.storeFile!, memory: this.memory,
      storageLatencyMs: o.storageLatencyMs ?? 0, seed: o.seed + 7 * (this.#retiredSwap.length + 1),
    });
    this.#swapRatio = ratio;
  }

  #allSwapStats(): SwapStats[] {
    return this.#swap === undefined ? this.#retiredSwap : [...this.#retiredSwap, this.#swap.stats()];
  }

  stats(): MemoryHierarchyStats {
    return {
      emBytes: this.memory.bytes,
      emSize: this.memory.size,
      emCapacity: this.memory.capacity,
      storedSamples: this.#storeCounts.stored,
      storeBytes: this.#storeCounts.bytes,
      swap: this.#swap === undefined && this.#retiredSwap.length === 0 ? null : mergeSwapStats(this.#allSwapStats()),
    };
  }

  async close(): Promise<void> {
    await this.#swap?.close();
    await this.#writer?.close();
  }
}

/** Sums the counters of several swap managers' statistics; means are weighted by applied swaps. */
function mergeSwapStats(all: readonly SwapStats[]): SwapStats {
  if (all.length === 1) return all[0]!;
  const sum = (k: keyof SwapStats): number => all.reduce((n, s) => n + s[k], 0);
  const applied = sum('applied');
  const weighted = (k: 'meanLagSteps' | 'meanLagMs'): number => (applied === 0 ? 0 : all.reduce((n, s) => n + s[k] * s.applied, 0) / applied);
  return {
    requested: sum('requested'), fetched: sum('fetched'), applied, missed: sum('missed'), dropped: sum('dropped'), skipped: sum('skipped'),
    pending: all[all.length - 1]!.pending, meanLagSteps: weighted('meanLagSteps'), maxLagSteps: Math.max(...all.map((s) => s.maxLagSteps)),
    meanLagMs: weighted('meanLagMs'), workerBusyMs: sum('workerBusyMs'), syncWaitMs: sum('syncWaitMs'), drainWaitMs: sum('drainWaitMs'),
  };
}
