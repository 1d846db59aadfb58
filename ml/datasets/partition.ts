import { StrataError, badValue } from '../../common/strata-error.js';
import { Rng } from '../rng.js';

/**
 * How a data set's training samples are dealt to N devices: the same deal,
 * from the same seed, whether one agent computes its own share or a
 * simulation computes everyone's (so a simulated client holds exactly the
 * samples, in exactly the stream order, the agent standing for it holds).
 * - `iid`: a seeded shuffle dealt into equal shares.
 * - `dirichlet:ALPHA` (Hsu et al. 2019): for every class, proportions over
 *   the devices drawn from Dir(ALPHA) cut that class's samples; small ALPHA
 *   gives each device few classes. Redrawn (up to 50 times) until every
 *   device holds at least `minSamples`, the usual guard against empty ones.
 * - `skew:D` (label skew): device i owns k = ceil(classes / N) consecutive
 *   classes; each sample goes, with probability D, to one of its class's
 *   owners, otherwise to any device (two draws per sample whatever the
 *   branch, so sample i's deal never depends on earlier branches).
 */
export type Partition = { kind: 'iid' } | { kind: 'dirichlet'; alpha: number } | { kind: 'skew'; dominance: number };

const NUMBER = String.raw`(\d+(\.\d*)?|\.\d+)(e-?\d+)?`;
export const PARTITION_PATTERN = new RegExp(`^(iid|dirichlet:${NUMBER}|skew:${NUMBER})$`);

/** `iid`, `dirichlet:ALPHA` or `skew:D`; `name` is what the caller calls the value (an option, or a flag). */
export function parsePartition(text: string, name = 'partition'): Partition {
  const bad = (): StrataError => badValue(name, `invalid value '${text}' (expected iid, dirichlet:ALPHA with ALPHA > 0, or skew:D with D in [0, 1])`, { value: text });
  if (text === 'iid') return { kind: 'iid' };
  const m = /^(dirichlet|skew):(.+)$/.exec(text);
  const v = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isFinite(v)) throw bad();
  if (m[1] === 'dirichlet') {
    if (!(v > 0)) throw bad();
    return { kind: 'dirichlet', alpha: v };
  }
  if (!(v >= 0 && v <= 1)) throw bad();
  return { kind: 'skew', dominance: v };
}

export function formatPartition(p: Partition): string {
  return p.kind === 'iid' ? 'iid' : p.kind === 'dirichlet' ? `dirichlet:${p.alpha}` : `skew:${p.dominance}`;
}

/** Every device's samples, each in its stream order (see `Partition`). */
export function partitionIndices(labels: Uint8Array, count: number, clients: number, partition: Partition, seed: number, minSamples = 10): Int32Array[] {
  if (partition.kind === 'skew') return labelSkew(labels, count, clients, partition.dominance, seed);
  const rng = new Rng(seed * 2654435761 + 17);
  if (partition.kind === 'iid') {
    const order = rng.shuffle(Int32Array.from({ length: count }, (_, i) => i));
    const out: Int32Array[] = [];
    for (let c = 0; c < clients; c++) {
      const start = Math.floor((c * count) / clients);
      const end = Math.floor(((c + 1) * count) / clients);
      out.push(order.slice(start, end));
    }
    return out;
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const l = labels[i]!;
    let list = byClass.get(l);
    if (list === undefined) byClass.set(l, (list = []));
    list.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const floor = Math.min(minSamples, Math.floor(count / clients));
  let best: number[][] = [];
  let bestMin = -1;
  for (let attempt = 0; attempt < 50; attempt++) {
    const parts: number[][] = Array.from({ length: clients }, () => []);
    for (const cls of classes) {
      const idx = rng.shuffle([...byClass.get(cls)!]);
      const p = dirichlet(clients, partition.alpha, rng);
      let at = 0;
      let acc = 0;
      for (let c = 0; c < clients; c++) {
        acc += p[c]!;
        const end = c === clients - 1 ? idx.length : Math.round(acc * idx.length);
        for (let k = at; k < end; k++) parts[c]!.push(idx[k]!);
        at = Math.max(at, end);
      }
    }
    const min = Math.min(...parts.map((x) => x.length));
    if (min > bestMin) {
      best = parts;
      bestMin = min;
    }
    if (min >= floor) break;
  }
  return best.map((p) => rng.shuffle(Int32Array.from(p)));
}

/** Device `index`'s samples of `partitionIndices`, in its stream order. */
export function deviceIndices(labels: Uint8Array, count: number, devices: number, index: number, partition: Partition, seed: number): Int32Array {
  if (!Number.isSafeInteger(index) || index < 0 || index >= devices) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `device index ${index} is not in 0..${devices - 1}`, { option: 'shard' });
  }
  return partitionIndices(labels, count, devices, partition, seed)[index]!;
}

/** Classes device `index` owns under label skew: `k` consecutive classes from `index x k`, wrapping. */
export function dominantClassesOf(index: number, numClasses: number, k: number): number[] {
  return Array.from({ length: k }, (_, j) => (index * k + j) % numClasses);
}

/** Classes each device owns under label skew (N devices, `numClasses` classes). */
export function classesPerDevice(numClasses: number, devices: number): number {
  return Math.max(1, Math.min(numClasses, Math.ceil(numClasses / devices)));
}

function labelSkew(labels: Uint8Array, count: number, devices: number, dominance: number, seed: number): Int32Array[] {
  let nc = 0;
  for (let i = 0; i < count; i++) nc = Math.max(nc, labels[i]! + 1);
  const k = classesPerDevice(nc, devices);
  const owners: number[][] = Array.from({ length: nc }, () => []);
  for (let s = 0; s < devices; s++) for (const c of dominantClassesOf(s, nc, k)) owners[c]!.push(s);
  const rng = new Rng(seed * 2_654_435_761 + 17);
  const mine: number[][] = Array.from({ length: devices }, () => []);
  for (let i = 0; i < count; i++) {
    const o = owners[labels[i]!]!;
    const u = rng.next();
    const v = rng.next();
    const d = o.length > 0 && u < dominance ? o[Math.floor(v * o.length)]! : Math.floor(v * devices);
    mine[d]!.push(i);
  }
  // Each device's stream order: a seeded shuffle of its own samples.
  return mine.map((m, index) => new Rng(seed * 31 + index + 1).shuffle(Int32Array.from(m)));
}

/** One draw from a symmetric Dirichlet(alpha) over k categories. */
export function dirichlet(k: number, alpha: number, rng: Rng): Float64Array {
  const g = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    g[i] = gamma(alpha, rng);
    sum += g[i]!;
  }
  if (!(sum > 0)) {
    g.fill(0);
    g[rng.int(k)] = 1;
    return g;
  }
  for (let i = 0; i < k; i++) g[i]! /= sum;
  return g;
}

/** Gamma(shape, 1) by Marsaglia-Tsang; shape < 1 through the boost Gamma(a+1) x U^(1/a). */
function gamma(shape: number, rng: Rng): number {
  if (shape < 1) return gamma(shape + 1, rng) * Math.pow(Math.max(rng.next(), 1e-300), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(Math.max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}
