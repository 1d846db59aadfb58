import { StrataError } from '../../common/strata-error.js';
import type { UpdateAggregator } from './strategy.js';

/**
 * Base of the order-statistic aggregators (median, trimmed mean). These
 * cannot stream: every coordinate needs all clients' values, so the round's
 * (clipped) deltas are kept — memory O(clients x model). Weights are ignored,
 * as in the robust-aggregation literature: one client, one vote.
 */
export abstract class BufferedAggregator implements UpdateAggregator {
  readonly buffersUpdates = true;
  readonly #numParams: number;
  readonly #deltas: Float32Array[] = [];
  #totalWeight = 0;

  constructor(numParams: number) {
    this.#numParams = numParams;
  }

  get count(): number {
    return this.#deltas.length;
  }

  get totalWeight(): number {
    return this.#totalWeight;
  }

  add(delta: Float32Array, weight: number, scale = 1): void {
    if (delta.length !== this.#numParams) {
      throw new StrataError('STRATA_ERR_BAD_UPDATE_LENGTH', `delta has ${delta.length} values, aggregator expects ${this.#numParams}`);
    }
    const copy = new Float32Array(delta);
    if (scale !== 1) for (let i = 0; i < copy.length; i++) copy[i]! *= scale;
    this.#deltas.push(copy);
    this.#totalWeight += weight;
  }

  result(): Float32Array {
    const n = this.#deltas.length;
    if (n === 0) throw new StrataError('STRATA_ERR_EMPTY_ROUND', 'no update to aggregate');
    const out = new Float32Array(this.#numParams);
    const column = new Float64Array(n);
    for (let i = 0; i < this.#numParams; i++) {
      for (let k = 0; k < n; k++) column[k] = this.#deltas[k]![i]!;
      column.sort();
      out[i] = this.reduceSorted(column);
    }
    return out;
  }

  /** One coordinate's value from all clients' values, sorted ascending. */
  protected abstract reduceSorted(sorted: Float64Array): number;
}
