import { FedAvg, type FedAvgOptions } from './fedavg.js';

export interface FedBuffOptions extends FedAvgOptions {
  /** Updates trained on a model more than this many versions old are rejected. Default 10. */
  maxStaleness?: number;
  /** Also weight by sample count. Default true. */
  sampleWeighted?: boolean;
}

/**
 * FedBuff (Nguyen et al. 2022): asynchronous; clients train whenever they
 * are free, the server buffers updates and steps the model every K of them
 * (K = the round's size). An update trained from a model `s` versions old is
 * weighted by 1 / sqrt(1 + s).
 */
export class FedBuff extends FedAvg {
  override readonly name: string = 'fedbuff';
  override readonly mode = 'async' as const;
  readonly maxStaleness: number;
  readonly #sampleWeighted: boolean;

  constructor(options: FedBuffOptions = {}) {
    super(options);
    this.maxStaleness = options.maxStaleness ?? 10;
    this.#sampleWeighted = options.sampleWeighted ?? true;
  }

  override settings(): Record<string, unknown> {
    return { ...super.settings(), maxStaleness: this.maxStaleness, sampleWeighted: this.#sampleWeighted };
  }

  static stalenessFactor(staleness: number): number {
    return 1 / Math.sqrt(1 + staleness);
  }

  override updateWeight(numSamples: number, staleness: number): number | null {
    if (staleness < 0 || staleness > this.maxStaleness) return null;
    return (this.#sampleWeighted ? Math.max(1, numSamples) : 1) * FedBuff.stalenessFactor(staleness);
  }
}
