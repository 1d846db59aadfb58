/**
 * CarM's RAM tier: the episodic memory (EM), a fixed number of past samples
 * held in flat typed arrays so replay batches are built without copying.
 * The swap manager overwrites slots with stored samples of the same class;
 * a per-slot generation lets it tell a slot it asked about from one the
 * stream (or a resize) has refilled since.
 */
import { StrataError } from '../../common/strata-error.js';
import type { DataSplit } from '../../ml/datasets/dataset.js';
import { Rng } from '../../ml/rng.js';
import {
  compileEpisodicMemoryOptions, intOption, type CompiledEpisodicMemoryOptions, type EpisodicMemoryOptions, type MemoryFeatureType, type MemorySampling,
} from './episodic-memory-options.js';

export {
  compileEpisodicMemoryOptions, type CompiledEpisodicMemoryOptions, type EpisodicMemoryOptions, type MemoryFeatureType, type MemorySampling,
} from './episodic-memory-options.js';

type Features = Uint8Array | Float32Array;

export interface ReplaceOptions {
  /** Allow the slot to change class (swap-in never does: it keeps the class balance). Default false. */
  allowClassChange?: boolean;
}

export class EpisodicMemory {
  readonly options: CompiledEpisodicMemoryOptions;
  readonly featureSize: number;
  readonly featureType: MemoryFeatureType;
  readonly numClasses: number;
  readonly logitsSize: number;
  readonly sampling: MemorySampling;
  #capacity!: number;
  #size = 0;
  /** Stream samples offered to `observe` so far (reservoir sampling's n). */
  #seen = 0;
  #rng: Rng;
  #features!: Features;
  #labels!: Uint8Array;
  #tasks!: Int32Array;
  #logits!: Float32Array;
  #hasLogits!: Uint8Array;
  /** Bumped whenever a slot gets a new sample other than a same-class swap-in. */
  #generations!: Float64Array;
  #nextGeneration = 1;
  // Slots of each class (grown on demand), for O(1) "a random slot of class c" and counts.
  #classSlots!: Int32Array[];
  #classCounts!: Int32Array;
  #posInClass!: Int32Array;
  // A permutation of 0..size-1 that sampleSlots keeps shuffling in place.
  #perm!: Int32Array;
  #permSize = 0;
  #split: DataSplit | null = null;

  constructor(options: EpisodicMemoryOptions) {
    this.options = compileEpisodicMemoryOptions(options);
    ({ featureSize: this.featureSize, featureType: this.featureType, numClasses: this.numClasses, logitsSize: this.logitsSize, sampling: this.sampling } = this.options);
    this.#rng = new Rng(this.options.seed);
    this.#allocate(this.options.capacity);
  }

  /** Fresh, empty buffers for `c` slots (construction and resize). */
  #allocate(c: number): void {
    this.#capacity = c;
    this.#features = this.#newFeatures(c);
    this.#labels = new Uint8Array(c);
    this.#tasks = new Int32Array(c);
    this.#logits = new Float32Array(c * this.logitsSize);
    this.#hasLogits = new Uint8Array(c);
    this.#generations = new Float64Array(c);
    this.#classCounts = new Int32Array(this.numClasses);
    this.#classSlots = Array.from({ length: this.numClasses }, () => new Int32Array(0));
    this.#posInClass = new Int32Array(c);
    this.#perm = new Int32Array(c);
  }

  get capacity(): number {
    return this.#capacity;
  }

  get size(): number {
    return this.#size;
  }

  /** Stream samples offered to `observe` so far. */
  get seen(): number {
    return this.#seen;
  }

  /** Bytes of the RAM buffers allocated for the slots (samples, logits and bookkeeping). */
  get bytes(): number {
    let b = this.#features.byteLength + this.#labels.byteLength + this.#tasks.byteLength + this.#logits.byteLength
      + this.#hasLogits.byteLength + this.#generations.byteLength + this.#posInClass.byteLength + this.#perm.byteLength;
    for (const s of this.#classSlots) b += s.byteLength;
    return b;
  }

  /**
   * Offers one stream sample. Reservoir: every sample seen so far has the
   * same chance capacity/seen of being in the EM. Class-balanced: once full,
   * a sample of a class with fewer slots than the largest class replaces a
   * random slot of the largest class (ties broken at random). Returns the slot
   * written, or -1.
   */
  observe(features: Features, label: number, task: number, logits?: Float32Array): number {
    this.#check(features, label, task, logits);
    this.#seen++;
    let slot: number;
    if (this.#size < this.#capacity) {
      slot = this.#size++;
      this.#labels[slot] = label;
      this.#addToClass(slot, label);
      this.#write(slot, features, task, logits ?? null);
      this.#generations[slot] = this.#nextGeneration++;
      return slot;
    }
    if (this.#capacity === 0) return -1;
    if (this.sampling === 'reservoir') {
      const j = this.#rng.int(this.#seen);
      if (j >= this.#capacity) return -1;
      slot = j;
    } else {
      const largest = this.#largestClass();
      if (this.#classCounts[label]! >= this.#classCounts[largest]!) return -1;
      slot = this.#randomSlotOf(largest);
    }
    this.#setLabel(slot, label);
    this.#write(slot, features, task, logits ?? null);
    this.#generations[slot] = this.#nextGeneration++;
    return slot;
  }

  /**
   * Overwrites slot `slot` (swap-in). The label must be the slot's current
   * label unless `allowClassChange`; a class change invalidates swaps still
   * in flight for the slot (a same-class swap-in does not).
   * `logits` null or absent: the slot has no logits afterwards.
   */
  replace(slot: number, features: Features, label: number, task: number, logits?: Float32Array | null, options: ReplaceOptions = {}): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.#size) {
      throw new StrataError('STRATA_ERR_BAD_SLOT', `slot ${slot} is not in the episodic memory (size ${this.#size})`, { slot, size: this.#size });
    }
    this.#check(features, label, task, logits ?? undefined);
    if (this.#labels[slot] !== label) {
      if (options.allowClassChange !== true) {
        throw new StrataError('STRATA_ERR_BAD_SAMPLE', `slot ${slot} holds class ${this.#labels[slot]}, not ${label} (pass allowClassChange to change it)`, { slot, label, current: this.#labels[slot] });
      }
      this.#setLabel(slot, label);
      this.#generations[slot] = this.#nextGeneration++;
    }
    this.#write(slot, features, task, logits ?? null);
  }

  /** `n` distinct random slots (all slots, in random order, when n >= size). */
  sampleSlots(n: number, rng: Rng): Int32Array {
    const size = this.#size;
    if (this.#permSize !== size) {
      // Slots only ever get appended between resizes: extend the permutation.
      if (this.#permSize > size) this.#permSize = 0;
      for (let i = this.#permSize; i < size; i++) this.#perm[i] = i;
      this.#permSize = size;
    }
    const k = Math.max(0, Math.min(Math.floor(n), size));
    const p = this.#perm;
    // Partial Fisher-Yates: the first k entries become a uniform sample.
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(size - i);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p.slice(0, k);
  }

  /**
   * A DataSplit view over the first `size` slots: features and labels are
   * the EM's own buffers (no copy), so a swap-in shows up in it at once. A
   * resize reallocates the buffers: take a fresh view after one.
   */
  asSplit(): DataSplit {
    const s = this.#split;
    if (s !== null && s.count === this.#size && s.labels.buffer === this.#labels.buffer) return s;
    this.#split = {
      features: this.#features.subarray(0, this.#size * this.featureSize),
      labels: this.#labels.subarray(0, this.#size),
      count: this.#size,
    };
    return this.#split;
  }

  /** The features of `slot` (a view into the EM). */
  featuresOf(slot: number): Features {
    this.#checkSlot(slot);
    return this.#features.subarray(slot * this.featureSize, (slot + 1) * this.featureSize);
  }

  /** The logits recorded with `slot`'s sample (a view), or null when it has none. */
  logitsOf(slot: number): Float32Array | null {
    this.#checkSlot(slot);
    if (this.#hasLogits[slot] !== 1) return null;
    return this.#logits.subarray(slot * this.logitsSize, (slot + 1) * this.logitsSize);
  }

  labelOf(slot: number): number {
    this.#checkSlot(slot);
    return this.#labels[slot]!;
  }

  taskOf(slot: number): number {
    this.#checkSlot(slot);
    return this.#tasks[slot]!;
  }

  /** Changes when the slot gets a new sample that a same-class swap did not bring. */
  generationOf(slot: number): number {
    return slot >= 0 && slot < this.#size ? this.#generations[slot]! : -1;
  }

  /** Slots per class, indexed by label (length numClasses). */
  countsByClass(): number[] {
    return Array.from(this.#classCounts);
  }

  /**
   * Miro resizes the EM at task boundaries. Shrinking keeps a class-balanced
   * subset (repeatedly dropping a random slot of the largest class); growing
   * keeps everything. Slots are renumbered: every slot gets a new generation.
   */
  resize(capacity: number, rng: Rng): void {
    intOption('capacity', capacity, 0);
    const keep = new Uint8Array(this.#size).fill(1);
    let size = this.#size;
    if (capacity < size) {
      const counts = Int32Array.from(this.#classCounts);
      const slotsOf = this.#classSlots.map((s, c) => s.slice(0, counts[c]!));
      while (size > capacity) {
        let largest = 0;
        let ties = 0;
        for (let c = 0; c < this.numClasses; c++) {
          if (counts[c]! > counts[largest]!) {
            largest = c;
            ties = 1;
          } else if (counts[c] === counts[largest] && rng.next() * ++ties < 1) {
            largest = c;
          }
        }
        const list = slotsOf[largest]!;
        const n = counts[largest]!;
        const i = rng.int(n);
        keep[list[i]!] = 0;
        list[i] = list[n - 1]!;
        counts[largest] = n - 1;
        size--;
      }
    }
    const oldFeatures = this.#features;
    const oldLabels = this.#labels;
    const oldTasks = this.#tasks;
    const oldLogits = this.#logits;
    const oldHasLogits = this.#hasLogits;
    const oldSize = this.#size;
    const c = capacity;
    const f = this.featureSize;
    const l = this.logitsSize;
    this.#allocate(c);
    this.#permSize = 0;
    this.#split = null;
    let to = 0;
    for (let from = 0; from < oldSize; from++) {
      if (keep[from] !== 1) continue;
      this.#features.set(oldFeatures.subarray(from * f, (from + 1) * f), to * f);
      this.#labels[to] = oldLabels[from]!;
      this.#tasks[to] = oldTasks[from]!;
      this.#hasLogits[to] = oldHasLogits[from]!;
      if (l > 0) this.#logits.set(oldLogits.subarray(from * l, (from + 1) * l), to * l);
      this.#addToClass(to, oldLabels[from]!);
      this.#generations[to] = this.#nextGeneration++;
      to++;
    }
    this.#size = to;
  }

  #newFeatures(n: number): Features {
    return this.featureType === 'uint8' ? new Uint8Array(n * this.featureSize) : new Float32Array(n * this.featureSize);
  }

  #check(features: Features, label: number, task: number, logits: Float32Array | undefined): void {
    const bad = (field: string, why: string): StrataError => new StrataError('STRATA_ERR_BAD_SAMPLE', `episodic memory sample: ${field} ${why}`, { field });
    if (this.featureType === 'uint8' ? !(features instanceof Uint8Array) : !(features instanceof Float32Array)) {
      throw bad('features', `must be a ${this.featureType === 'uint8' ? 'Uint8Array' : 'Float32Array'}`);
    }
    if (features.length !== this.featureSize) throw bad('features', `must hold ${this.featureSize} values (got ${features.length})`);
    if (!Number.isInteger(label) || label < 0 || label >= this.numClasses) throw bad('label', `must be an integer in [0, ${this.numClasses})`);
    if (!Number.isInteger(task) || task < 0) throw bad('task', 'must be an integer >= 0');
    if (logits !== undefined && this.logitsSize > 0 && logits.length !== this.logitsSize) {
      throw bad('logits', `must hold ${this.logitsSize} values (got ${logits.length})`);
    }
  }

  #checkSlot(slot: number): void {
    if (!(slot >= 0 && slot < this.#size)) {
      throw new StrataError('STRATA_ERR_BAD_SLOT', `slot ${slot} is not in the episodic memory (size ${this.#size})`, { slot, size: this.#size });
    }
  }

  #write(slot: number, features: Features, task: number, logits: Float32Array | null): void {
    this.#features.set(features, slot * this.featureSize);
    this.#tasks[slot] = task;
    if (this.logitsSize > 0 && logits !== null) {
      this.#logits.set(logits, slot * this.logitsSize);
      this.#hasLogits[slot] = 1;
    } else {
      this.#hasLogits[slot] = 0;
    }
  }

  #setLabel(slot: number, label: number): void {
    const old = this.#labels[slot]!;
    if (old === label) return;
    this.#removeFromClass(slot, old);
    this.#labels[slot] = label;
    this.#addToClass(slot, label);
  }

  #addToClass(slot: number, label: number): void {
    const n = this.#classCounts[label]!;
    let list = this.#classSlots[label]!;
    if (n === list.length) {
      // Grown on demand: the lists together stay O(capacity), not O(classes x capacity).
      const grown = new Int32Array(Math.min(this.#capacity, Math.max(8, n * 2)));
      grown.set(list);
      this.#classSlots[label] = list = grown;
    }
    list[n] = slot;
    this.#posInClass[slot] = n;
    this.#classCounts[label] = n + 1;
  }

  #removeFromClass(slot: number, label: number): void {
    const list = this.#classSlots[label]!;
    const n = this.#classCounts[label]! - 1;
    const pos = this.#posInClass[slot]!;
    const last = list[n]!;
    list[pos] = last;
    this.#posInClass[last] = pos;
    this.#classCounts[label] = n;
  }

  #largestClass(): number {
    let largest = 0;
    let ties = 0;
    const counts = this.#classCounts;
    for (let c = 0; c < this.numClasses; c++) {
      if (counts[c]! > counts[largest]!) {
        largest = c;
        ties = 1;
      } else if (counts[c] === counts[largest] && this.#rng.next() * ++ties < 1) {
        largest = c;
      }
    }
    return largest;
  }

  #randomSlotOf(label: number): number {
    return this.#classSlots[label]![this.#rng.int(this.#classCounts[label]!)]!;
  }
}
