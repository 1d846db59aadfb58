import path from 'node:path';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { EpisodicMemory, type MemorySampling } from './episodic-memory.js';
import { StreamWriter } from './stream-writer.js';
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
 * EM samples with stored ones of the same class.
 */
export class MemoryHierarchy {
  readonly memory: EpisodicMemory;
  readonly options: Readonly<MemoryHierarchyOptions>;
  readonly #writer: StreamWriter | undefined;
  readonly #swap: SwapManager | undefined;
  #storeCounts = { stored: 0, bytes: 0 };

  private constructor(options: MemoryHierarchyOptions, memory: EpisodicMemory, writer: StreamWriter | undefined, swap: SwapManager | undefined) {
    this.options = Object.freeze({ ...options });
    this.memory = memory;
    this.#writer = writer;
    this.#swap = swap;
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
    let writer: StreamWriter | undefined;
    let swap: SwapManager | undefined;
    if (options.storage !== 'none') {
      writer = await StreamWriter.start({ storeFile, capacity: options.storage, featureSize: options.featureSize, featureType: options.featureType });
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
    if (toWrite.length > 0) this.#writer!.write(toWrite);
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

  stats(): MemoryHierarchyStats {
    return {
      emBytes: this.memory.bytes,
      emSize: this.memory.size,
      emCapacity: this.memory.capacity,
      storedSamples: this.#storeCounts.stored,
      storeBytes: this.#storeCounts.bytes,
      swap: this.#swap?.stats() ?? null,
    };
  }

  async close(): Promise<void> {
    await this.#swap?.close();
    await this.#writer?.close();
  }
}
