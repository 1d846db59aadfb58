import { randomFillSync } from 'node:crypto';
import { Rng } from '../ml/rng.js';

/** Standard normal draws. */
export interface NormalSource {
  next(): number;
}

/**
 * Standard normal draws by Box–Muller from a cryptographic source (the
 * default, for devices and the coordinator: DP noise must not be
 * predictable), or from a seeded generator (`seeded`: simulations, so a run
 * reproduces).
 */
export class GaussianNoise implements NormalSource {
  readonly #uniform: () => number;
  #spare: number | undefined;

  constructor(uniform?: () => number) {
    this.#uniform = uniform ?? secureUniform();
  }

  static seeded(seed: number): GaussianNoise {
    const rng = new Rng(seed);
    return new GaussianNoise(() => rng.next());
  }

  next(): number {
    if (this.#spare !== undefined) {
      const s = this.#spare;
      this.#spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.#uniform();
    const v = this.#uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Adds N(0, std^2) to each value in place. */
  addTo(values: Float32Array | Float64Array, std: number): void {
    if (!(std > 0)) return;
    for (let i = 0; i < values.length; i++) values[i]! += std * this.next();
  }
}

/** Uniform [0, 1) doubles from the OS's CSPRNG, 53 random bits each, drawn 512 at a time. */
function secureUniform(): () => number {
  const buf = new Uint32Array(1024);
  let at = buf.length;
  return () => {
    if (at >= buf.length) {
      randomFillSync(buf);
      at = 0;
    }
    const hi = buf[at++]! >>> 5;
    const lo = buf[at++]! >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}
