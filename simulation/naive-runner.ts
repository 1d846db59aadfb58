import { fork } from 'node:child_process';
import { runtimeFile } from '../common/runtime-file.js';
import { StrataError } from '../common/strata-error.js';
import type { NaiveReply, NaiveRequest } from './naive-client.js';
import type { ClientJob, ClientResult, EnforcerSpec, ModelSpec } from './sim-messages.js';

export interface NaiveStats {
  processes: number;
  loadSeconds: number;
}

/**
 * `--mode naive`: the same jobs, one fresh process per client, one after
 * another, each loading tfjs, the data set and the model itself.
 */
export class NaiveRunner {
  readonly #spec: ModelSpec;
  readonly #enforcer: EnforcerSpec;
  readonly #onChild: ((pid: number | null) => void) | undefined;
  #processes = 0;
  #loadSeconds = 0;

  constructor(spec: ModelSpec, enforcer: EnforcerSpec, onChild?: (pid: number | null) => void) {
    this.#spec = spec;
    this.#enforcer = enforcer;
    this.#onChild = onChild;
  }

  async runRound(weights: Float32Array, jobs: readonly ClientJob[]): Promise<ClientResult[]> {
    const out: ClientResult[] = [];
    for (const job of [...jobs].sort((a, b) => a.clientId - b.clientId)) out.push(await this.#runOne(weights, job));
    return out;
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
