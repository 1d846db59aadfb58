import type { TrainingConfig } from '../../protocol/index.js';
import { MeanAccumulator } from './mean-accumulator.js';
import type { FederatedStrategy, RoundContext, UpdateAggregator } from './strategy.js';

export interface FedAvgOptions {
  /** Step size on the averaged delta. Default 1 (plain FedAvg: the new model is the weighted mean of client models). */
  serverLearningRate?: number;
}

/**
 * FedAvg (McMahan et al. 2017): the sample-weighted mean of client deltas,
 * streamed into one accumulator.
 */
export class FedAvg implements FederatedStrategy {
  readonly name: string = 'fedavg';
  readonly mode: 'sync' | 'async' = 'sync';
  protected readonly serverLearningRate: number;

  constructor(options: FedAvgOptions = {}) {
    this.serverLearningRate = options.serverLearningRate ?? 1;
  }

  configureRound(_round: RoundContext): Partial<TrainingConfig> {
    return {};
  }

  settings(): Record<string, unknown> {
    return { serverLearningRate: this.serverLearningRate };
  }

  updateWeight(numSamples: number, _staleness: number): number | null {
    return Math.max(1, numSamples);
  }

  createAggregator(numParams: number): UpdateAggregator {
    return new MeanAccumulator(numParams);
  }

  applyAggregate(global: Float32Array, aggregate: Float32Array): Float32Array {
    const lr = this.serverLearningRate;
    for (let i = 0, n = global.length; i < n; i++) global[i]! += lr * aggregate[i]!;
    return global;
  }

  exportState(): Uint8Array | null {
    return null;
  }

  importState(_state: Uint8Array | null): void {}
}
