export type {
  ClosedRound, PrivacySpent,
  Evaluation, Evaluator, FederatedStrategy, RoundContext, SelectionCandidate, SelectionContext, UpdateAggregator,
} from './strategy.js';
export { StrategyWrapper } from './strategy-wrapper.js';
export { Clipping, clipScale, deltaNorm } from './clipping.js';
export { ServerEvaluation } from './server-evaluation.js';
export { MeanAccumulator } from './mean-accumulator.js';
export { BufferedAggregator } from './buffered-aggregator.js';
export { FedAvg, type FedAvgOptions } from './fedavg.js';
export { FedProx, type FedProxOptions } from './fedprox.js';
export { FedBuff, type FedBuffOptions } from './fedbuff.js';
export { ServerOptimizer, type ServerOptimizerOptions } from './server-optimizer.js';
export { FedAdam } from './fedadam.js';
export { FedYogi } from './fedyogi.js';
export { MedianAggregator, MedianStrategy } from './median.js';
export { TrimmedMeanAggregator, TrimmedMeanStrategy, type TrimmedMeanOptions } from './trimmed-mean.js';
