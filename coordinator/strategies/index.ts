import { StrataError } from '../../common/strata-error.js';
import { FedAdam } from './fedadam.js';
import { FedAvg } from './fedavg.js';
import { FedBuff } from './fedbuff.js';
import { FedProx } from './fedprox.js';
import { FedYogi } from './fedyogi.js';
import { MedianStrategy } from './median.js';
import { TrimmedMeanStrategy } from './trimmed-mean.js';
import { STRATEGY_NAMES, type FederatedStrategy, type StrategyName } from './strategy.js';

export { clipScale, deltaNorm } from './clipping.js';
export { MeanAccumulator } from './mean-accumulator.js';
export { BufferedAggregator } from './buffered-aggregator.js';
export { MedianAggregator, MedianStrategy } from './median.js';
export { TrimmedMeanAggregator, TrimmedMeanStrategy } from './trimmed-mean.js';
export { FedAvg, FedProx, FedAdam, FedYogi, FedBuff };
export { STRATEGY_NAMES, type FederatedStrategy, type StrategyName, type UpdateAggregator } from './strategy.js';

/** Every strategy's knobs; each strategy reads the ones it has (defaults in its file). */
export interface StrategyOptions {
  serverLearningRate?: number;
  fedproxMu?: number;
  beta1?: number;
  beta2?: number;
  tau?: number;
  maxStaleness?: number;
  trimmedMeanBeta?: number;
}

export function isStrategyName(value: string): value is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(value);
}

export function createStrategy(name: string, o: StrategyOptions = {}): FederatedStrategy {
  const lr = o.serverLearningRate === undefined ? {} : { serverLearningRate: o.serverLearningRate };
  switch (name) {
    case 'fedavg': return new FedAvg(lr);
    case 'fedprox': return new FedProx({ ...lr, ...(o.fedproxMu === undefined ? {} : { mu: o.fedproxMu }) });
    case 'fedadam': return new FedAdam({ ...lr, ...pick(o, ['beta1', 'beta2', 'tau']) });
    case 'fedyogi': return new FedYogi({ ...lr, ...pick(o, ['beta1', 'beta2', 'tau']) });
    case 'fedbuff': return new FedBuff({ ...lr, ...pick(o, ['maxStaleness']) });
    case 'median': return new MedianStrategy(lr);
    case 'trimmed-mean': return new TrimmedMeanStrategy({ ...lr, ...(o.trimmedMeanBeta === undefined ? {} : { beta: o.trimmedMeanBeta }) });
    default:
      throw new StrataError('STRATA_ERR_BAD_OPTION', `strategy: unknown '${name}' (expected ${STRATEGY_NAMES.join(', ')})`, { option: 'strategy', value: name });
  }
}

function pick<K extends keyof StrategyOptions>(o: StrategyOptions, keys: readonly K[]): Partial<Pick<StrategyOptions, K>> {
  const out: Partial<Pick<StrategyOptions, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
