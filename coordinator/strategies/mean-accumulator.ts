import { StrataError } from '../../common/strata-error.js';
import { SimdVectors, simdAvailable } from './simd-vectors.js';
import type { UpdateAggregator } from './strategy.js';

/** Below this the SIMD kernels' copy in costs more than it saves. */
const SIMD_MIN_PARAMS = 1024;

/**
 * Streaming weighted mean: one float64 running sum of `weight x scale x delta`
 * and the total weight. Memory is O(model) however many clients report;
 * each update is read once and can be dropped right after `add`.
 */
export class MeanAccumulator implements UpdateAggregator {
  readonly buffersUpdates = false;
  readonly #sum: Float64Array;
  /** The SIMD kernels holding `#sum` in their memory, where they run (bit-identical to the loop below). */
  readonly #simd: SimdVectors | undefined;
  #count = 0;
  #totalWeight = 0;
  /** With the SIMD kernels: the delta copied into their memory, where `add` reads it without copying again (UpdateAggregator.stage). */
  readonly stage: ((delta: Float32Array) => Float32Array) | undefined;

  constructor(numParams: number) {
    this.#simd = numParams >= SIMD_MIN_PARAMS && simdAvailable() ? new SimdVectors(numParams, true) : undefined;
    this.#sum = this.#simd?.sum.subarray(0, numParams) ?? new Float64Array(numParams);
    const simd = this.#simd;
    this.stage = simd === undefined ? undefined : (delta) => simd.stage(delta);
  }

  get count(): number {
    return this.#count;
  }

  get totalWeight(): number {
    return this.#totalWeight;
  }

  add(delta: Float32Array, weight: number, scale = 1): void {
    const sum = this.#sum;
    if (delta.length !== sum.length) {
      throw new StrataError('STRATA_ERR_BAD_UPDATE_LENGTH', `delta has ${delta.length} values, aggregator expects ${sum.length}`);
    }
    if (!(weight > 0) || !Number.isFinite(weight)) throw new StrataError('STRATA_ERR_BAD_OPTION', `aggregation weight must be > 0 (got ${weight})`);
    const f = weight * scale;
    if (this.#simd !== undefined) {
      this.#simd.accumulate(delta, f);
      this.#count++;
      this.#totalWeight += weight;
      return;
    }
    // Read once, in place (delta may be a view into the received frame); unrolled by four.
    const n = sum.length;
    const n4 = n - (n % 4);
    let i = 0;
    for (; i < n4; i += 4) {
      sum[i]! += f * delta[i]!;
      sum[i + 1]! += f * delta[i + 1]!;
      sum[i + 2]! += f * delta[i + 2]!;
      sum[i + 3]! += f * delta[i + 3]!;
    }
    for (; i < n; i++) sum[i]! += f * delta[i]!;
    this.#count++;
    this.#totalWeight += weight;
  }

  result(): Float32Array {
    if (this.#count === 0) throw new StrataError('STRATA_ERR_EMPTY_ROUND', 'no update to aggregate');
    const out = new Float32Array(this.#sum.length);
    const inv = 1 / this.#totalWeight;
    for (let i = 0, n = out.length; i < n; i++) out[i] = this.#sum[i]! * inv;
    return out;
  }
}
