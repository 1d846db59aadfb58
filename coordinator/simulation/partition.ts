import { Rng } from '../../ml/rng.js';
import type { Partition } from './simulation-config.js';

/**
 * Splits sample indices over clients.
 * - `iid`: a seeded shuffle dealt into equal shares.
 * - `dirichlet:ALPHA` (Hsu et al. 2019): for every class, proportions over
 *   the clients drawn from Dir(ALPHA) cut that class's samples; small ALPHA
 *   gives each client few classes. Redrawn (up to 50 times) until every
 *   client holds at least `minSamples`, the usual guard against empty clients.
 */
export function partitionIndices(labels: Uint8Array, count: number, clients: number, partition: Partition, seed: number, minSamples = 10): Int32Array[] {
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
