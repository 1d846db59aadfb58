import { ServerOptimizer } from './server-optimizer.js';

/** FedAdam: v = b2 v + (1 - b2) d^2. */
export class FedAdam extends ServerOptimizer {
  override readonly name: string = 'fedadam';

  protected secondMoment(v: number, d: number): number {
    return this.beta2 * v + (1 - this.beta2) * d * d;
  }
}
