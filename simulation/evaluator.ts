import { Worker } from 'node:worker_threads';
import { runtimeFile } from '../common/runtime-file.js';
import { StrataError } from '../common/strata-error.js';
import type { AppSpec } from './sim-messages.js';

export interface EvaluatorWorkerData {
  spec: AppSpec;
  /** Test samples scored (0: all). */
  evalSamples: number;
}

export interface EvaluatorRequest { id: number; weights: Float32Array; seenClasses: number[] | null }
export type EvaluatorReply =
  | { id: number; ready: true }
  | { id: number; accuracy: number; loss: number; accuracySeen?: number }
  | { id: number; error: string };

export interface ModelScore { accuracy: number; loss: number; accuracySeen?: number }

/**
 * Scores global models on the test split in a worker thread of its own
 * (evaluator-thread.ts), one after another, so the simulation host's event
 * loop keeps moving jobs and results while a model is scored.
 */
export class ModelEvaluator {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: (s: ModelScore) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #failed: Error | undefined;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (m: EvaluatorReply) => {
      const w = this.#waiting.get(m.id);
      if (w === undefined) return;
      this.#waiting.delete(m.id);
      if ('error' in m) w.reject(new StrataError('STRATA_ERR_EVALUATOR', m.error));
      else if ('accuracy' in m) w.resolve(m);
    });
    worker.on('error', (err) => this.#fail(new StrataError('STRATA_ERR_EVALUATOR', `evaluator thread crashed: ${err.message}`)));
    worker.on('exit', (code) => { if (code !== 0) this.#fail(new StrataError('STRATA_ERR_EVALUATOR', `evaluator thread exited (code ${code})`)); });
  }

  static async start(data: EvaluatorWorkerData): Promise<ModelEvaluator> {
    const worker = new Worker(runtimeFile(import.meta.url, 'evaluator-thread'), { workerData: data });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: EvaluatorReply): void => {
        if (m.id !== -1) return;
        worker.off('message', onMessage);
        if ('error' in m) reject(new StrataError('STRATA_ERR_EVALUATOR', m.error));
        else resolve();
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new ModelEvaluator(worker);
  }

  /** Accuracy and loss on the test split (and on the test samples of `seenClasses`, when given). */
  score(weights: Float32Array, seenClasses: number[] | null): Promise<ModelScore> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, weights, seenClasses } satisfies EvaluatorRequest);
    });
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}
