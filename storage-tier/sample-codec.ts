/**
 * Sample rows <-> typed arrays. Features are stored as their raw bytes
 * (uint8: one byte each, so a 28x28 MNIST image is a 784-byte BLOB; float32:
 * four bytes each, little-endian as on every platform Node runs on), with a
 * dtype code and a shape so they round-trip exactly.
 */
import { StrataError } from '../common/strata-error.js';
import { slotLabel } from './migrations.js';
import type { SampleFormat } from './sample-formats.js';

export type FeatureDType = 'uint8' | 'float32';
export type Features = Uint8Array | Float32Array;

/** A sample handed to `SampleStore.ingest`. */
export interface SampleInput {
  task: number;
  /** Class label: an integer >= 0. */
  label: number;
  /** `Uint8Array` (pixels) or `Float32Array`; a Node `Buffer` counts as uint8. */
  features: Features;
  /** Defaults to `[features.length]`; its product must equal `features.length`. */
  shape?: readonly number[];
  /** Model logits recorded when the sample was seen (DER++). */
  logits?: Float32Array;
}

/** A sample read back from the store. */
export interface StoredSample {
  /** Insertion sequence: increases with every stored sample, never reused. */
  id: number;
  /** The ingest batch (transaction) that wrote it. */
  batch: number;
  task: number;
  label: number;
  dtype: FeatureDType;
  features: Features;
  shape: readonly number[];
  logits: Float32Array | null;
}

/** Labels key the store's rows (ord * 2^24 + label): below 2^24. */
export const MAX_LABEL = 0xffffff;

export const DTYPE_CODE: Readonly<Record<FeatureDType, number>> = { uint8: 0, float32: 1 };

/** A validated sample, ready to bind to the insert statement. */
export interface EncodedSample {
  task: number;
  label: number;
  dtype: number;
  shape: string | null;
  features: Uint8Array;
  logits: Uint8Array | null;
  bytes: number;
}

function bytesOf(a: Features): Uint8Array {
  return a instanceof Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The stored text of a shape: the last one is reused (a batch's samples share theirs), not joined per sample. */
let lastShape: { dims: number[]; text: string } = { dims: [], text: '' };
function shapeText(dims: readonly number[]): string {
  const last = lastShape.dims;
  if (last.length === dims.length) {
    let same = true;
    for (let i = 0; i < dims.length; i++) if (last[i] !== dims[i]) same = false;
    if (same) return lastShape.text;
  }
  lastShape = { dims: [...dims], text: dims.join(',') };
  return lastShape.text;
}

/** Validates sample `index` of a batch; throws STRATA_ERR_BAD_SAMPLE naming the field. */
export function encodeSample(s: SampleInput, index: number): EncodedSample {
  const bad = (field: string, why: string): StrataError =>
    new StrataError('STRATA_ERR_BAD_SAMPLE', `sample ${index}: ${field} ${why}`, { index, field });
  if (!isIndex(s.label) || s.label > MAX_LABEL) throw bad('label', `must be an integer in 0..${MAX_LABEL}`);
  if (!isIndex(s.task)) throw bad('task', 'must be an integer >= 0');
  const f = s.features;
  let dtype: FeatureDType;
  if (f instanceof Uint8Array) dtype = 'uint8';
  else if (f instanceof Float32Array) dtype = 'float32';
  else throw bad('features', 'must be a Uint8Array or Float32Array');
  if (f.length === 0) throw bad('features', 'must not be empty');
  let shape: string | null = null;
  if (s.shape !== undefined) {
    let size = 1;
    for (const d of s.shape) {
      if (!(isIndex(d) && d > 0)) throw bad('shape', 'must hold positive integers');
      size *= d;
    }
    if (size !== f.length) throw bad('shape', `[${s.shape.join(',')}] does not match ${f.length} features`);
    if (s.shape.length !== 1) shape = shapeText(s.shape);
  }
  let logits: Uint8Array | null = null;
  if (s.logits !== undefined) {
    if (!(s.logits instanceof Float32Array)) throw bad('logits', 'must be a Float32Array');
    logits = bytesOf(s.logits);
  }
  const features = bytesOf(f);
  return {
    task: s.task,
    label: s.label,
    dtype: DTYPE_CODE[dtype],
    shape,
    features,
    logits,
    bytes: features.byteLength + (logits?.byteLength ?? 0),
  };
}

/** Float32 view of a BLOB, copying only when the bytes are not 4-aligned. */
function float32Of(buf: Uint8Array): Float32Array {
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return new Float32Array(buf.slice().buffer);
}

/**
 * Row columns, in the order of `SAMPLE_COLUMNS`:
 * id, batch, task, slot (label and ord), format (dtype and shape), features, logits.
 */
export const SAMPLE_COLUMNS = 'id, batch, task, slot, format, features, logits';

/** A sample row (`SAMPLE_COLUMNS`, raw) as typed arrays, its format looked up by `formatOf`. */
export function decodeSampleRow(row: unknown[], formatOf: (format: number) => SampleFormat): StoredSample {
  const [id, batch, task, slot, format, features, logits] = row as [number, number, number, number, number, Uint8Array, Uint8Array | null];
  const f = formatOf(format);
  const isFloat = f.dtype === DTYPE_CODE.float32;
  const data: Features = isFloat ? float32Of(features) : new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
  return {
    id,
    batch,
    task,
    label: slotLabel(slot),
    dtype: isFloat ? 'float32' : 'uint8',
    features: data,
    shape: f.shape ?? [data.length],
    logits: logits === null ? null : float32Of(logits),
  };
}
