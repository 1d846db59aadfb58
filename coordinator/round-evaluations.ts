import type { Evaluation, RoundEngineDeps, RoundSummary } from './round-engine-types.js';
import type { AppliedRound } from './apply-round.js';
import { logEvent } from '../common/log-events.js';

/**
 * Evaluates each new model, one after another, beside the next round: the
 * evaluation is persisted with its model version, then the round is
 * reported completed (logged, `roundCompleted`) with it. A failed
 * evaluation is logged instead. After the last round's, the run finishes.
 */
export class RoundEvaluations {
  readonly #d: RoundEngineDeps;
  readonly #finish: () => void;
  #chain: Promise<void> = Promise.resolve();
  #last: Evaluation | null = null;

  /** `finish` ends the run, after the last round's evaluation. */
  constructor(deps: RoundEngineDeps, finish: () => void) {
    this.#d = deps;
    this.#finish = finish;
  }

  /** The latest model's evaluation (at start, the persisted one). */
  get last(): Evaluation | null { return this.#last; }
  set last(e: Evaluation | null) { this.#last = e; }

  /** Evaluates `weights`, the model `s` produced, after those already queued; `last`: the run then finishes. */
  add(weights: Float32Array, s: AppliedRound, last: boolean): void {
    const d = this.#d;
    this.#chain = this.#chain.then(async () => {
      const evaluation = d.strategy.evaluate ? await d.strategy.evaluate(weights, { roundId: s.roundId, modelVersion: s.modelVersion }) : null;
      if (evaluation !== null) {
        d.store.setModelEvaluation(s.modelVersion, evaluation.accuracy, evaluation.loss);
        this.#last = evaluation;
      }
      const summary: RoundSummary = { ...s, accuracy: evaluation?.accuracy ?? null, loss: evaluation?.loss ?? null };
      d.log.info({ ...logEvent('coordinator.round-completed'), roundId: s.roundId, modelVersion: s.modelVersion, applied: s.applied, seconds: s.seconds, accuracy: summary.accuracy, loss: summary.loss }, 'round completed');
      d.observer?.roundCompleted?.(summary);
    }).catch((err: unknown) => {
      d.log.error({ err, roundId: s.roundId }, 'evaluating the new model failed');
    }).then(() => {
      if (last) this.#finish();
    }).catch((err: unknown) => {
      d.log.error({ err }, 'finishing the run failed');
    });
  }

  /** Settles when every evaluation queued so far is done. */
  settled(): Promise<void> {
    return this.#chain;
  }
}
