/** One split of a labelled image data set, held compactly in memory. */
export interface DataSplit {
  /** Row-major features, `count x featureSize`; value = raw x `Dataset.scale`. */
  features: Uint8Array | Float32Array;
  /** Class index per sample. */
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  /** As given on the command line: `mnist`, `synthetic`, `idx:DIR`. */
  name: string;
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  featureSize: number;
  numClasses: number;
  /** Multiplier from stored values to model inputs (1/255 for bytes). */
  scale: number;
  train: DataSplit;
  test: DataSplit;
}

/** Samples of `split` whose label is in `classes`, in their original order. */
export function indicesOfClasses(split: DataSplit, classes: readonly number[]): Int32Array {
  const wanted = new Uint8Array(256);
  for (const c of classes) wanted[c] = 1;
  let n = 0;
  for (let i = 0; i < split.count; i++) if (wanted[split.labels[i]!] === 1) n++;
  const out = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < split.count; i++) if (wanted[split.labels[i]!] === 1) out[k++] = i;
  return out;
}

/** A new split holding the rows `indices` of `split` (copied). */
export function subsetSplit(split: DataSplit, indices: ArrayLike<number>, featureSize: number): DataSplit {
  const n = indices.length;
  const features = split.features instanceof Uint8Array ? new Uint8Array(n * featureSize) : new Float32Array(n * featureSize);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const src = indices[i]!;
    features.set(split.features.subarray(src * featureSize, (src + 1) * featureSize), i * featureSize);
    labels[i] = split.labels[src]!;
  }
  return { features, labels, count: n };
}

/** Index lists joined end to end. */
export function concatIndices(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let k = 0;
  for (const p of parts) {
    out.set(p, k);
    k += p.length;
  }
  return out;
}
