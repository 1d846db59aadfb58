import { StrataError } from '../common/strata-error.js';
import { Clipping } from '../coordinator/strategies/clipping.js';
import { StrategyWrapper } from '../coordinator/strategies/strategy-wrapper.js';
import type { FederatedStrategy } from '../coordinator/strategies/strategy.js';

/** Secure aggregation settings of a coordinator (or a simulation's round engine). */
export interface SecureAggregationOptions {
  /** Neighbours per party in the SecAgg+ graph (k, even). Default 2 ceil(log2 n) for n parties, the whole cohort below that. */
  neighbours?: number;
  /**
   * Each coordinate of a device's weighted update (update x weight) is
   * clipped to +-range before it is quantized. Default 1,024; with central
   * DP (uniform weights, device clipping) the clipping norm plus room for
   * the noise shares.
   */
  range?: number;
}

/** How devices weight their update before masking, read off the strategy. */
export type SecAggWeighting = 'samples' | 'uniform';

function incompatible(why: string, strategy: string): StrataError {
  return new StrataError('STRATA_ERR_SECAGG_INCOMPATIBLE', `secure aggregation: ${why}`, { strategy });
}

/**
 * Refuses what cannot run when the coordinator only ever sees the sum of a
 * round's updates: an asynchronous strategy (FedBuff weighs each update by
 * its own staleness as it arrives), a robust aggregator (median, trimmed
 * mean: they look at every update), a per-update norm bound (it reads each
 * update's norm) and server-side clipping (it scales each update; clip on
 * the devices with DP's clip instead). Weights are applied on the device,
 * so the strategy's weight must be the sample count (FedAvg, FedProx,
 * FedAdam, ...) or uniform (DP). Returns that weighting.
 */
export function checkSecureAggregation(strategy: FederatedStrategy, o: { maxUpdateNorm: number }): SecAggWeighting {
  const name = strategy.name;
  if (strategy.mode === 'async') throw incompatible(`${name} is asynchronous: it weighs each update by its staleness as it arrives, which needs individual updates`, name);
  if (strategy.createAggregator(1).buffersUpdates) throw incompatible(`${name} aggregates robustly (it looks at every update), which needs individual updates`, name);
  if (Number.isFinite(o.maxUpdateNorm)) throw incompatible('a per-update norm bound (maxUpdateNorm) reads each update; leave it off', name);
  for (let s: FederatedStrategy = strategy; s instanceof StrategyWrapper; s = s.inner) {
    if (s instanceof Clipping) throw incompatible('server-side clipping scales each update; clip on the devices (DP clip) instead', name);
  }
  const w1 = strategy.updateWeight(1, 0);
  const w37 = strategy.updateWeight(37, 0);
  if (w1 === 1 && w37 === 37) return 'samples';
  if (w1 === 1 && w37 === 1) return 'uniform';
  throw incompatible(`${name} weighs updates by neither their sample count nor uniformly; devices apply the weight before masking`, name);
}
