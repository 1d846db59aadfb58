import { StrataError } from '../../common/strata-error.js';
import { BufferedAggregator } from './buffered-aggregator.js';
import { FedAvg, type FedAvgOptions } from './fedavg.js';
import type { UpdateAggregator } from './strategy.js';

/** Coordinate-wise trimmed mean (Yin et al. 2018): drop the `beta` fraction of largest and of smallest values. */
export class TrimmedMeanAggregator extends BufferedAggregator {
  readonly #beta: number;

  constructor(numParams: number, beta: number) {
    super(numParams);
    this.#beta = beta;
  }

  protected reduceSorted(s: Float64Array): number {
    const n = s.length;
    // Never trim everything: at least one value stays.
    const k = Math.min(Math.floor(this.#beta * n), Math.floor((n - 1) / 2));
    let sum = 0;
    for (let i = k; i < n - k; i++) sum += s[i]!;
    return sum / (n - 2 * k);
  }
}

export interface TrimmedMeanOptions extends FedAvgOptions {
  /** Fraction trimmed from each end, in [0, 0.5). Default 0.1. */
  beta?: number;
}

export class TrimmedMeanStrategy extends FedAvg {
  override readonly name: string = 'trimmed-mean';
  readonly beta: number;

  constructor(options: TrimmedMeanOptions = {}) {
    super(options);
    this.beta = options.beta ?? 0.1;
    if (!(this.beta >= 0 && this.beta < 0.5)) throw new StrataError('STRATA_ERR_BAD_OPTION', `trimmedMeanBeta must be in [0, 0.5) (got ${this.beta})`, { option: 'trimmedMeanBeta' });
  }

  override createAggregator(numParams: number): UpdateAggregator {
    return new TrimmedMeanAggregator(numParams, this.beta);
  }

  override settings(): Record<string, unknown> {
    return { ...super.settings(), beta: this.beta };
  }
}
