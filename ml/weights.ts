import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../common/strata-error.js';

export interface WeightEntry {
  name: string;
  shape: number[];
  /** Start index in the flat vector. */
  offset: number;
  size: number;
}

/** Where each weight tensor sits in a flat vector. */
export interface WeightLayout {
  entries: WeightEntry[];
  totalSize: number;
}

export function layoutOf(model: tf.LayersModel): WeightLayout {
  let offset = 0;
  const entries = model.weights.map((w) => {
    const shape = w.shape.map((d) => d ?? 1);
    const size = shape.reduce((a, b) => a * b, 1);
    const entry = { name: w.originalName, shape, offset, size };
    offset += size;
    return entry;
  });
  return { entries, totalSize: offset };
}

export function sameLayout(a: WeightLayout, b: WeightLayout): boolean {
  return a.totalSize === b.totalSize && a.entries.length === b.entries.length
    && a.entries.every((e, i) => e.name === b.entries[i]!.name && e.shape.join(',') === b.entries[i]!.shape.join(','));
}

/** All of a model's weights as one flat Float32Array (a copy). */
export function getFlatWeights(model: tf.LayersModel, out?: Float32Array): Float32Array {
  const layout = layoutOf(model);
  const flat = out ?? new Float32Array(layout.totalSize);
  if (flat.length !== layout.totalSize) {
    throw new StrataError('STRATA_ERR_LAYOUT_MISMATCH', `weight vector has ${flat.length} values, model needs ${layout.totalSize}`);
  }
  model.weights.forEach((w, i) => {
    flat.set(w.read().dataSync() as Float32Array, layout.entries[i]!.offset);
  });
  return flat;
}

/** Writes a flat vector into a model's weights; its length must match the layout. */
export function setFlatWeights(model: tf.LayersModel, flat: Float32Array): void {
  const layout = layoutOf(model);
  if (flat.length !== layout.totalSize) {
    throw new StrataError('STRATA_ERR_LAYOUT_MISMATCH', `weight vector has ${flat.length} values, model needs ${layout.totalSize}`, {
      expected: layout.totalSize, actual: flat.length,
    });
  }
  tf.tidy(() => {
    model.weights.forEach((w, i) => {
      const e = layout.entries[i]!;
      w.write(tf.tensor(flat.subarray(e.offset, e.offset + e.size), e.shape, 'float32'));
    });
  });
}

/**
 * A model as a flat weight vector: its layout (names and shapes, what the
 * coordinator and every device check) and its initial weights. What a
 * `Coordinator` takes as its `model`.
 */
export function flatModel(model: tf.LayersModel): { layout: { name: string; shape: number[] }[]; initialWeights: () => Float32Array } {
  const layout = layoutOf(model).entries.map((e) => ({ name: e.name, shape: [...e.shape] }));
  return { layout, initialWeights: () => getFlatWeights(model) };
}
