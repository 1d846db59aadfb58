import type { TrainingConfig } from '../../protocol/index.js';
import { FedAvg, type FedAvgOptions } from './fedavg.js';
import type { RoundContext } from './strategy.js';

export interface FedProxOptions extends FedAvgOptions {
  /** Proximal term weight sent to clients (they add mu/2 ||w - w_global||^2). Default 0.01. */
  mu?: number;
}

/**
 * FedProx (Li et al. 2020): the server side is FedAvg; the difference is the
 * proximal term the clients train with, so `mu` goes out in every assignment.
 */
export class FedProx extends FedAvg {
  override readonly name: string = 'fedprox';
  readonly mu: number;

  constructor(options: FedProxOptions = {}) {
    super(options);
    this.mu = options.mu ?? 0.01;
  }

  override configureRound(_round: RoundContext): Partial<TrainingConfig> {
    return { fedproxMu: this.mu };
  }

  override settings(): Record<string, unknown> {
    return { ...super.settings(), mu: this.mu };
  }
}
