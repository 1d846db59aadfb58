import { StrataError } from '../../common/strata-error.js';
import { SimdVectors, simdAvailable } from './simd-vectors.js';
import type { FederatedStrategy } from './strategy.js';
import { StrategyWrapper } from './strategy-wrapper.js';

/**
 * Update-norm clipping (robust aggregation / DP-FedAvg style) around any
 * strategy: an update whose L2 norm exceeds `clipNorm` is scaled down to
 * that norm before it is aggregated (the engine passes the factor to
 * `UpdateAggregator.add` and records it). Rejection above a hard bound is
 * separate: the coordinator's `maxUpdateNorm`.
 */
export class Clipping extends StrategyWrapper {
  readonly clipNorm: number;

  constructor(inner: FederatedStrategy, clipNorm: number) {
    super(inner);
    if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `clipNorm must be a finite number > 0 (got ${clipNorm})`, { option: 'clipNorm', value: clipNorm });
    }
    this.clipNorm = clipNorm;
  }

  override updateScale(norm: number): number {
    return Math.min(super.updateScale(norm), clipScale(norm, this.clipNorm));
  }

  override settings(): Record<string, unknown> {
    return { ...super.settings(), clipNorm: this.clipNorm };
  }
}

/** The factor that scales an update of L2 norm `norm` down to `clipNorm` (1 when it is within it, or clipping is off). */
export function clipScale(norm: number, clipNorm: number | undefined): number {
  if (clipNorm === undefined || !(norm > clipNorm)) return 1;
  return clipNorm / norm;
}

const SIMD_MIN_VALUES = 1024;
let normKernels: SimdVectors | undefined;

/**
 * L2 norm of a delta, or of `weights - base` for a full-weight update, in
 * one pass; NaN/Infinity anywhere make it non-finite (float32 squares cannot
 * overflow float64), so the same pass is the finiteness check.
 */
export function deltaNorm(values: Float32Array, base?: Float32Array): number {
  // Four partial sums: independent add chains run about twice as fast as one.
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = values.length;
  const n4 = n - (n % 4);
  let i = 0;
  if (base === undefined && n >= SIMD_MIN_VALUES && simdAvailable()) {
    // The same four partial sums, two float64 lanes at a time (simd-vectors.ts): the same result.
    // Values staged by an accumulator are read where they are (SimdVectors.stage); others are copied into the norm's own kernels.
    let kernels = SimdVectors.holding(values);
    if (kernels === undefined) {
      if (normKernels === undefined || normKernels.capacity < n) normKernels = new SimdVectors(n, false);
      kernels = normKernels;
    }
    const p = kernels.squares(values);
    s0 = p[0]!;
    s1 = p[1]!;
    s2 = p[2]!;
    s3 = p[3]!;
    for (i = n4; i < n; i++) {
      const v = values[i]!;
      s0 += v * v;
    }
  } else if (base === undefined) {
    for (; i < n4; i += 4) {
      const a = values[i]!;
      const b = values[i + 1]!;
      const c = values[i + 2]!;
      const d = values[i + 3]!;
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; i < n; i++) {
      const v = values[i]!;
      s0 += v * v;
    }
  } else {
    for (; i < n4; i += 4) {
      const a = values[i]! - base[i]!;
      const b = values[i + 1]! - base[i + 1]!;
      const c = values[i + 2]! - base[i + 2]!;
      const d = values[i + 3]! - base[i + 3]!;
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; i < n; i++) {
      const v = values[i]! - base[i]!;
      s0 += v * v;
    }
  }
  return Math.sqrt(s0 + s1 + s2 + s3);
}
