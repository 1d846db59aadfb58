import type { TrainingConfig } from '../../protocol/index.js';
import type {
  ClosedRound, Evaluation, FederatedStrategy, PrivacySpent, RoundContext, SelectionCandidate, SelectionContext, UpdateAggregator,
} from './strategy.js';

/**
 * A strategy that is another one with one step changed: every call goes to
 * `inner` unless a subclass overrides it (`Clipping` scales updates,
 * `ServerEvaluation` scores each new model). Wrappers stack.
 */
export class StrategyWrapper implements FederatedStrategy {
  readonly inner: FederatedStrategy;

  constructor(inner: FederatedStrategy) {
    this.inner = inner;
  }

  get name(): string { return this.inner.name; }
  get mode(): 'sync' | 'async' { return this.inner.mode; }

  configureRound(round: RoundContext): Partial<TrainingConfig> {
    return this.inner.configureRound(round);
  }

  get selectClients(): FederatedStrategy['selectClients'] {
    const inner = this.inner;
    return inner.selectClients === undefined
      ? undefined
      : (candidates: readonly SelectionCandidate[], count: number, context: SelectionContext) => inner.selectClients!(candidates, count, context);
  }

  updateWeight(numSamples: number, staleness: number): number | null {
    return this.inner.updateWeight(numSamples, staleness);
  }

  updateScale(norm: number): number {
    return this.inner.updateScale?.(norm) ?? 1;
  }

  createAggregator(numParams: number): UpdateAggregator {
    return this.inner.createAggregator(numParams);
  }

  applyAggregate(global: Float32Array, aggregate: Float32Array): Float32Array {
    return this.inner.applyAggregate(global, aggregate);
  }

  get evaluate(): FederatedStrategy['evaluate'] {
    const inner = this.inner;
    return inner.evaluate === undefined ? undefined : (weights: Float32Array, round: { roundId: number; modelVersion: number }): Evaluation | Promise<Evaluation> => inner.evaluate!(weights, round);
  }

  settings(): Record<string, unknown> {
    return this.inner.settings?.() ?? {};
  }

  roundClosed(round: ClosedRound): void {
    this.inner.roundClosed?.(round);
  }

  privacySpent(): PrivacySpent | undefined {
    return this.inner.privacySpent?.();
  }

  budgetSpent(next: { population: number; perRound: number }): string | null {
    return this.inner.budgetSpent?.(next) ?? null;
  }

  exportState(): Uint8Array | null {
    return this.inner.exportState();
  }

  importState(state: Uint8Array | null): void {
    this.inner.importState(state);
  }
}
