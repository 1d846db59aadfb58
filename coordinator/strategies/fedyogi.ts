import { ServerOptimizer } from './server-optimizer.js';

/** FedYogi: v = v - (1 - b2) d^2 sign(v - d^2): v grows or shrinks additively, never explodes. */
export class FedYogi extends ServerOptimizer {
  override readonly name: string = 'fedyogi';

  protected secondMoment(v: number, d: number): number {
    const d2 = d * d;
    return v - (1 - this.beta2) * d2 * Math.sign(v - d2);
  }
}
