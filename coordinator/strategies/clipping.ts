/**
 * Update-norm clipping (robust aggregation / DP-FedAvg style): an update
 * whose L2 norm exceeds `clipNorm` is scaled down to that norm before it is
 * aggregated. Works with every strategy: the engine passes the factor to
 * `UpdateAggregator.add`. (Rejection above a hard bound is separate:
 * `maxUpdateNorm` in the validator.)
 */
export function clipScale(norm: number, clipNorm: number | undefined): number {
  if (clipNorm === undefined || !(norm > clipNorm)) return 1;
  return clipNorm / norm;
}

/**
 * L2 norm of a delta, or of `weights - base` for a full-weight update, in
 * one pass; NaN/Infinity anywhere make it non-finite (float32 squares cannot
 * overflow float64), so the same pass is the finiteness check.
 */
export function deltaNorm(values: Float32Array, base?: Float32Array): number {
  let ss = 0;
  if (base === undefined) {
    for (let i = 0, n = values.length; i < n; i++) {
      const v = values[i]!;
      ss += v * v;
    }
  } else {
    for (let i = 0, n = values.length; i < n; i++) {
      const v = values[i]! - base[i]!;
      ss += v * v;
    }
  }
  return Math.sqrt(ss);
}
