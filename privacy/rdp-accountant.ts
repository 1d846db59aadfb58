/**
 * Rényi DP accountant for the sampled Gaussian mechanism (Mironov, Talwar
 * and Zhang, "Rényi Differential Privacy of the Sampled Gaussian
 * Mechanism", 2019): each step releases a sum over a Poisson sample (rate
 * q) of records of L2 sensitivity 1 plus N(0, sigma^2) noise. Its RDP at
 * order alpha is log(A_alpha) / (alpha - 1), with A_alpha summed exactly
 * for integer orders and by the two-sided series for fractional ones; RDP
 * composes by addition over steps, and converts to (epsilon, delta) by
 * Balle et al. 2020 (Theorem 21), minimized over the orders.
 *
 * In federated learning a record is a client: q is the fraction of the
 * population a round samples, sigma the noise multiplier (noise standard
 * deviation over the clipping norm), a step is a round.
 */

/** The orders Opacus and TF Privacy use by default: 1.1, 1.2, ..., 10.9, then 12..63. */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === Number.NEGATIVE_INFINITY) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

function logSub(a: number, b: number): number {
  if (b === Number.NEGATIVE_INFINITY) return a;
  if (a <= b) return Number.NEGATIVE_INFINITY;
  return Math.log(Math.expm1(a - b)) + b;
}

/** log of the binomial coefficient C(n, k) for real n >= 0 and integer k (sign dropped), and its sign. */
function logBinomial(n: number, k: number): { log: number; sign: 1 | -1 } {
  let log = 0;
  let sign: 1 | -1 = 1;
  for (let j = 0; j < k; j++) {
    const f = (n - j) / (j + 1);
    if (f === 0) return { log: Number.NEGATIVE_INFINITY, sign: 1 };
    if (f < 0) sign = sign === 1 ? -1 : 1;
    log += Math.log(Math.abs(f));
  }
  return { log, sign };
}

/**
 * log(erfc(x)), accurate in the tails: Numerical Recipes' Chebyshev fit
 * (fractional error below 1.2e-7 everywhere) evaluated in log space, so it
 * does not underflow for large x.
 */
export function logErfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
    + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const logPositive = Math.log(t) + poly;
  return x >= 0 ? logPositive : Math.log(2 - Math.exp(logPositive));
}

function logAInteger(q: number, sigma: number, alpha: number): number {
  let logA = Number.NEGATIVE_INFINITY;
  for (let i = 0; i <= alpha; i++) {
    const c = logBinomial(alpha, i).log + i * Math.log(q) + (alpha - i) * Math.log1p(-q);
    logA = logAdd(logA, c + (i * i - i) / (2 * sigma * sigma));
  }
  return logA;
}

function logAFractional(q: number, sigma: number, alpha: number): number {
  let a0 = Number.NEGATIVE_INFINITY;
  let a1 = Number.NEGATIVE_INFINITY;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  for (let i = 0; i < 10_000; i++) {
    const b = logBinomial(alpha, i);
    const j = alpha - i;
    const t0 = b.log + i * Math.log(q) + j * Math.log1p(-q);
    const t1 = b.log + j * Math.log(q) + i * Math.log1p(-q);
    const e0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const e1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const s0 = t0 + (i * i - i) / (2 * sigma * sigma) + e0;
    const s1 = t1 + (j * j - j) / (2 * sigma * sigma) + e1;
    if (b.sign > 0) {
      a0 = logAdd(a0, s0);
      a1 = logAdd(a1, s1);
    } else {
      a0 = logSub(a0, s0);
      a1 = logSub(a1, s1);
    }
    if (Math.max(s0, s1) < -30) break;
  }
  return logAdd(a0, a1);
}

/** RDP at `order` of one step of the sampled Gaussian mechanism with sampling rate `q` and noise multiplier `sigma`. */
export function sampledGaussianRdp(q: number, sigma: number, order: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Number.POSITIVE_INFINITY;
  if (q >= 1) return order / (2 * sigma * sigma);
  const logA = Number.isInteger(order) ? logAInteger(q, sigma, order) : logAFractional(q, sigma, order);
  return logA / (order - 1);
}

/** (epsilon, the order it was reached at) of RDP values `rdp` at `orders` for `delta`. */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  let best = { epsilon: Number.POSITIVE_INFINITY, order: Number.NaN };
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k]!;
    const eps = rdp[k]! - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/** One accounted round. */
export interface AccountedStep {
  q: number;
  noiseMultiplier: number;
}

/** Composes sampled-Gaussian steps and reports (epsilon, delta). */
export class RdpAccountant {
  readonly orders: readonly number[];
  readonly #rdp: number[];
  #steps = 0;

  constructor(orders: readonly number[] = DEFAULT_RDP_ORDERS) {
    this.orders = orders;
    this.#rdp = orders.map(() => 0);
  }

  get steps(): number {
    return this.#steps;
  }

  /** The RDP one step would add, at each order. */
  stepRdp(q: number, noiseMultiplier: number): number[] {
    return this.orders.map((a) => sampledGaussianRdp(q, noiseMultiplier, a));
  }

  step(q: number, noiseMultiplier: number, steps = 1): void {
    const add = this.stepRdp(q, noiseMultiplier);
    for (let k = 0; k < add.length; k++) this.#rdp[k]! += steps * add[k]!;
    this.#steps += steps;
  }

  /** Epsilon spent so far at `delta`. */
  epsilon(delta: number): number {
    return this.#steps === 0 ? 0 : rdpToEpsilon(this.orders, this.#rdp, delta).epsilon;
  }

  /** Epsilon after `steps` more steps of (q, noiseMultiplier), without taking them. */
  epsilonAfter(q: number, noiseMultiplier: number, delta: number, steps = 1): number {
    const add = this.stepRdp(q, noiseMultiplier);
    return rdpToEpsilon(this.orders, this.#rdp.map((r, k) => r + steps * add[k]!), delta).epsilon;
  }

  /** The accumulated RDP at each order (a copy). */
  get rdp(): number[] {
    return [...this.#rdp];
  }

  /** Restores accumulated RDP (the same orders) and the step count. */
  restore(rdp: readonly number[], steps: number): void {
    if (rdp.length !== this.#rdp.length) return;
    for (let k = 0; k < rdp.length; k++) this.#rdp[k] = rdp[k]!;
    this.#steps = steps;
  }
}
