import { StrataError } from '../../common/strata-error.js';
import { FedAvg } from './fedavg.js';

export interface ServerOptimizerOptions {
  /** Server learning rate eta. Default 0.01 (Reddi et al. 2021 tune it in 10^-3..1). */
  serverLearningRate?: number;
  /** First-moment decay. Default 0.9. */
  beta1?: number;
  /** Second-moment decay. Default 0.99. */
  beta2?: number;
  /** Adaptivity (epsilon) tau. Default 1e-3. */
  tau?: number;
}

/**
 * Adaptive server optimizers (Reddi et al., "Adaptive Federated
 * Optimization", 2021): the averaged delta is a pseudo-gradient,
 *   m = b1 m + (1 - b1) d;   v = secondMoment(v, d);   x += eta m / (sqrt(v) + tau).
 * FedAdam and FedYogi differ only in the second-moment update. m and v are
 * persisted with every model version so a restart continues the same run.
 */
export abstract class ServerOptimizer extends FedAvg {
  protected readonly beta1: number;
  protected readonly beta2: number;
  protected readonly tau: number;
  #m: Float32Array | undefined;
  #v: Float32Array | undefined;

  constructor(options: ServerOptimizerOptions = {}) {
    super({ serverLearningRate: options.serverLearningRate ?? 0.01 });
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.99;
    this.tau = options.tau ?? 1e-3;
  }

  override settings(): Record<string, unknown> {
    return { ...super.settings(), beta1: this.beta1, beta2: this.beta2, tau: this.tau };
  }

  /** New v[i] from the old one and the delta's coordinate. */
  protected abstract secondMoment(v: number, d: number): number;

  /** Initial v: tau^2, as in the paper. */
  protected initialV(): number {
    return this.tau * this.tau;
  }

  override applyAggregate(global: Float32Array, d: Float32Array): Float32Array {
    const n = global.length;
    if (this.#m === undefined || this.#m.length !== n) {
      this.#m = new Float32Array(n);
      this.#v = new Float32Array(n).fill(this.initialV());
    }
    const m = this.#m;
    const v = this.#v!;
    const { beta1: b1, tau } = this;
    const lr = this.serverLearningRate;
    for (let i = 0; i < n; i++) {
      const di = d[i]!;
      const mi = b1 * m[i]! + (1 - b1) * di;
      const vi = this.secondMoment(v[i]!, di);
      m[i] = mi;
      v[i] = vi;
      global[i]! += (lr * mi) / (Math.sqrt(vi) + tau);
    }
    return global;
  }

  override exportState(): Uint8Array | null {
    if (this.#m === undefined || this.#v === undefined) return null;
    const out = new Float32Array(2 * this.#m.length);
    out.set(this.#m, 0);
    out.set(this.#v, this.#m.length);
    return new Uint8Array(out.buffer);
  }

  override importState(state: Uint8Array | null): void {
    if (state === null) {
      this.#m = undefined;
      this.#v = undefined;
      return;
    }
    if (state.byteLength % 8 !== 0) throw new StrataError('STRATA_ERR_STORE_STATE', `${this.name} state of ${state.byteLength} bytes is not two float32 vectors`);
    const all = new Float32Array(state.byteLength / 4);
    new Uint8Array(all.buffer).set(state);
    const n = all.length / 2;
    this.#m = all.slice(0, n);
    this.#v = all.slice(n);
  }
}
