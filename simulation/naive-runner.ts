import { fork } from 'node:child_process';
import { runtimeFile } from '../common/runtime-file.js';
import { StrataError } from '../common/strata-error.js';
import type { NaiveReply, NaiveRequest } from './naive-client.js';
import type { ClientJob, ClientResult, EnforcerSpec, AppSpec } from './sim-messages.js';

export interface NaiveStats {
  processes: number;
  loadSeconds: number;
}

/**
 * `--mode naive`: the same jobs, one fresh process per client job, one after
 * another, each loading tfjs, the data set and the model itself.
 */
export class NaiveRunner {
  readonly #spec: AppSpec;
  readonly #enforcer: EnforcerSpec;
  readonly #onChild: ((pid: number | null) => void) | undefined;
  #processes = 0;
  #loadSeconds = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(spec: AppSpec, enforcer: EnforcerSpec, onChild?: (pid: number | null) => void) {
    this.#spec = spec;
    this.#enforcer = enforcer;
    this.#onChild = onChild;
  }

  /** Runs one client job in a fresh process; jobs queue and run one after another. */
  run(job: ClientJob, model: { version: number; weights: Float32Array }): Promise<ClientResult> {
    const next = this.#queue.then(() => this.#runOne(model.weights, job));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #runOne(weights: Float32Array, job: ClientJob): Promise<ClientResult> {
    return new Promise((resolve, reject) => {
      const child = fork(runtimeFile(import.meta.url, 'naive-client'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.#processes++;
      this.#onChild?.(child.pid ?? null);
      let reply: NaiveReply | undefined;
      child.on('message', (m: NaiveReply) => { reply = m; });
      child.on('exit', (code, signal) => {
        this.#onChild?.(null);
        if (reply?.type === 'result') {
          this.#loadSeconds += reply.loadSeconds;
          resolve(reply.result);
        } else {
          reject(new StrataError('STRATA_ERR_CLIENT_FAILED', `naive client ${job.clientId} failed: ${reply?.type === 'failed' ? reply.message : `exited (code ${code}, signal ${signal})`}`));
        }
      });
      child.send({ type: 'run', spec: this.#spec, enforcer: this.#enforcer, job, weights } satisfies NaiveRequest);
    });
  }

  stats(): NaiveStats {
    return { processes: this.#processes, loadSeconds: this.#loadSeconds };
  }
}
