import { BufferedAggregator } from './buffered-aggregator.js';
import { FedAvg } from './fedavg.js';
import type { UpdateAggregator } from './strategy.js';

/** Coordinate-wise median (Yin et al. 2018). */
export class MedianAggregator extends BufferedAggregator {
  protected reduceSorted(s: Float64Array): number {
    const n = s.length;
    const mid = n >> 1;
    return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  }
}

/** FedAvg's server step on the coordinate-wise median of the deltas (buffers the round's updates). */
export class MedianStrategy extends FedAvg {
  override readonly name: string = 'median';

  override createAggregator(numParams: number): UpdateAggregator {
    return new MedianAggregator(numParams);
  }
}
