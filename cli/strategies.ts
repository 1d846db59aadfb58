import { StrataError } from '../common/strata-error.js';
import { GaussianNoise } from '../privacy/gaussian-noise.js';
import { DifferentialPrivacy, type DifferentialPrivacyOptions } from '../privacy/differential-privacy.js';
import type { SimulationConfig } from '../simulation/simulation-config.js';
import {
  Clipping, FedAdam, FedAvg, FedBuff, FedProx, FedYogi, MedianStrategy, ServerEvaluation, TrimmedMeanStrategy,
  type Evaluator, type FederatedStrategy,
} from '../coordinator/strategies/index.js';

/** The strategies the CLI and config files name. */
export const STRATEGY_NAMES = ['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedbuff', 'median', 'trimmed-mean'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Every named strategy's knobs (flags and config-file keys); each strategy reads the ones it has (defaults in its file). */
export interface StrategySettings {
  serverLearningRate?: number | undefined;
  fedproxMu?: number | undefined;
  beta1?: number | undefined;
  beta2?: number | undefined;
  tau?: number | undefined;
  maxStaleness?: number | undefined;
  trimmedMeanBeta?: number | undefined;
  /** Wraps the strategy in `Clipping` (> 0). */
  clipNorm?: number | undefined;
  /** Wraps the strategy in `DifferentialPrivacy`. */
  dp?: DifferentialPrivacyOptions | undefined;
  /** Wraps the strategy in `ServerEvaluation`. */
  evaluate?: Evaluator | undefined;
}

export function isStrategyName(value: string): value is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(value);
}

/** The strategy object a name and its settings stand for (`--strategy`, a config file's `strategy`). */
export function strategyFromName(name: string, s: StrategySettings = {}): FederatedStrategy {
  const lr = s.serverLearningRate === undefined ? {} : { serverLearningRate: s.serverLearningRate };
  const adaptive = { ...lr, ...defined({ beta1: s.beta1, beta2: s.beta2, tau: s.tau }) };
  let strategy: FederatedStrategy;
  switch (name) {
    case 'fedavg': strategy = new FedAvg(lr); break;
    case 'fedprox': strategy = new FedProx({ ...lr, ...defined({ mu: s.fedproxMu }) }); break;
    case 'fedadam': strategy = new FedAdam(adaptive); break;
    case 'fedyogi': strategy = new FedYogi(adaptive); break;
    case 'fedbuff': strategy = new FedBuff({ ...lr, ...defined({ maxStaleness: s.maxStaleness }) }); break;
    case 'median': strategy = new MedianStrategy(lr); break;
    case 'trimmed-mean': strategy = new TrimmedMeanStrategy({ ...lr, ...defined({ beta: s.trimmedMeanBeta }) }); break;
    default:
      throw new StrataError('STRATA_ERR_BAD_FLAG', `--strategy: unknown '${name}' (expected ${STRATEGY_NAMES.join(', ')})`, { flag: '--strategy', value: name });
  }
  if (s.clipNorm !== undefined && s.clipNorm > 0) strategy = new Clipping(strategy, s.clipNorm);
  if (s.dp !== undefined) strategy = new DifferentialPrivacy(strategy, s.dp);
  if (s.evaluate !== undefined) strategy = new ServerEvaluation(strategy, s.evaluate);
  return strategy;
}

function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** The strategy a simulation config names, with its knobs. */
export function simulationStrategy(config: SimulationConfig): FederatedStrategy {
  if (!isStrategyName(config.strategy)) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "strategy": unknown '${config.strategy}' (expected ${STRATEGY_NAMES.join(', ')})`, { key: 'strategy' });
  }
  if (config.dp !== 'off' && !(config.dpClip > 0)) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "dpClip": dp ${config.dp} needs a clipping norm > 0`, { key: 'dpClip' });
  }
  return strategyFromName(config.strategy, {
    serverLearningRate: config.serverLearningRate, fedproxMu: config.fedproxMu, maxStaleness: config.maxStaleness,
    trimmedMeanBeta: config.trimmedMeanBeta, clipNorm: config.clipNorm,
    dp: config.dp === 'off' ? undefined : {
      mode: config.dp, noiseMultiplier: config.dpNoiseMultiplier, clip: config.dpClip, delta: config.dpDelta,
      ...(config.dpEpsilon > 0 ? { budget: { epsilon: config.dpEpsilon, delta: config.dpDelta } } : {}),
      // A simulation reproduces: its server-side noise is seeded from the run's seed.
      noise: GaussianNoise.seeded((config.seed ^ 0xd9_5eed) >>> 0),
    },
  });
}
