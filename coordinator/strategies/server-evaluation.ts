import type { Evaluation, Evaluator, FederatedStrategy } from './strategy.js';
import { StrategyWrapper } from './strategy-wrapper.js';

/**
 * Any strategy, with each new global model scored on the server by
 * `evaluator` (Flower's `evaluate_fn`): e.g. test accuracy on held-out data
 * the coordinator has. The round engine runs it beside the next round.
 */
export class ServerEvaluation extends StrategyWrapper {
  readonly #evaluator: Evaluator;

  constructor(inner: FederatedStrategy, evaluator: Evaluator) {
    super(inner);
    this.#evaluator = evaluator;
  }

  override get evaluate(): (weights: Float32Array, round: { roundId: number; modelVersion: number }) => Evaluation | Promise<Evaluation> {
    return (weights) => this.#evaluator(weights);
  }
}
