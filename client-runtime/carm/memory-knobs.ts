/**
 * The narrow surface of the memory hierarchy that a configurator (Miro)
 * turns at task boundaries, and what it needs to build trial memories:
 * EM capacity (a grow is filled from the store), swap ratio, whether the
 * hierarchy stores and swaps at all, a snapshot of the EM and a read-only
 * handle on the store. The stream buffer is the loop's knob
 * (`ClLoopControl`), not the hierarchy's.
 */
import type { Rng } from '../../ml/rng.js';
import type { SampleStore } from '../../storage-tier/sample-store.js';
import type { EpisodicMemory } from './episodic-memory.js';

/** A frozen copy of an EM's samples, taken once per task boundary. */
export interface MemorySnapshot {
  readonly options: EpisodicMemory['options'];
  readonly features: (Uint8Array | Float32Array)[];
  readonly labels: number[];
  readonly tasks: number[];
  readonly logits: (Float32Array | null)[];
}

export function snapshotMemory(em: EpisodicMemory): MemorySnapshot {
  const n = em.size;
  const features: (Uint8Array | Float32Array)[] = [];
  const labels: number[] = [];
  const tasks: number[] = [];
  const logits: (Float32Array | null)[] = [];
  for (let s = 0; s < n; s++) {
    features.push(em.featuresOf(s).slice());
    labels.push(em.labelOf(s));
    tasks.push(em.taskOf(s));
    const l = em.logitsOf(s);
    logits.push(l === null ? null : l.slice());
  }
  return { options: em.options, features, labels, tasks, logits };
}

export interface MemoryKnobs {
  /** EM slots in RAM now. */
  readonly capacity: number;
  /**
   * A new EM capacity: a shrink keeps a class-balanced subset; a grow is
   * filled class-balanced from the store. Returns the stored samples read.
   */
  resizeMemory(capacity: number, rng: Rng): { filled: number };
  /** Swap ratio in force (0 while no swap manager runs). */
  readonly swapRatio: number;
  setSwapRatio(ratio: number): Promise<void>;
  /** Whether swaps can run at all: a store and a swap mode (they start from the second task). */
  readonly canSwap: boolean;
  /** Whether stream samples are written to the store. */
  readonly persists: boolean;
  /** Payload bytes of one stored sample (features, plus logits for DER++). */
  readonly sampleBytes: number;
  /** A copy of the EM's samples now, for trial memories. */
  snapshot(): MemorySnapshot;
  /** A read-only connection to the sample store (the caller closes it), or null without storage. */
  openStoreReadOnly(): SampleStore | null;
}
