import { StrataError } from '../common/strata-error.js';
import type { TrainingConfig } from '../protocol/index.js';
import { clipScale } from '../coordinator/strategies/clipping.js';
import { StrategyWrapper } from '../coordinator/strategies/strategy-wrapper.js';
import type { ClosedRound, FederatedStrategy, PrivacySpent, RoundContext, UpdateAggregator } from '../coordinator/strategies/strategy.js';
import { GaussianNoise, type NormalSource } from './gaussian-noise.js';
import { RdpAccountant } from './rdp-accountant.js';

export interface DifferentialPrivacyOptions {
  /**
   * `central` (DP-FedAvg, McMahan et al. 2018): updates are clipped to
   * `clip` and weighted uniformly; the coordinator adds N(0, (z clip)^2)
   * to their sum — or, under secure aggregation, the devices add it in
   * shares (distributed DP). `local`: each device clips and adds the whole
   * noise to its own update.
   */
  mode: 'central' | 'local';
  /** z: noise standard deviation over the clipping norm. */
  noiseMultiplier: number;
  /** L2 norm each update is clipped to. */
  clip: number;
  /** Delta epsilon is reported at. Default the budget's, else 1e-5. */
  delta?: number;
  /** Training stops before a round that would spend past it. Default: no budget. */
  budget?: { epsilon: number; delta: number };
  /** Server-side noise source. Default cryptographic; a seeded one for simulations. */
  noise?: NormalSource;
}

function bad(option: string, expected: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `differential privacy: ${option} must be ${expected} (got ${String(value)})`, { option, value });
}

const STATE_MAGIC = 0x31504453; // 'SDP1'

/**
 * Differential privacy around any FedAvg-family strategy, with an RDP
 * accountant (subsampled Gaussian) that reports (epsilon, delta) per round
 * and in total, and an optional budget: the engine stops training, with a
 * log line, before a round that would spend past it.
 *
 * Accounting: a round is one step of the sampled Gaussian mechanism with
 * sampling rate q = contributors / population and noise multiplier z (for
 * distributed noise, z sqrt(m / K): m of the K shares arrived). Local DP is
 * accounted per device without amplification (q = 1, every round): the
 * coordinator sees who took part.
 */
export class DifferentialPrivacy extends StrategyWrapper {
  /** `central` or `local` (the strategy's own `mode` stays its inner one's: sync). */
  readonly privacyMode: 'central' | 'local';
  readonly noiseMultiplier: number;
  readonly clip: number;
  readonly delta: number;
  readonly budget: { epsilon: number; delta: number } | null;
  readonly #accountant = new RdpAccountant();
  readonly #noise: NormalSource;
  #last: { epsilonRound: number; q: number; distributed: boolean } = { epsilonRound: 0, q: 0, distributed: false };

  constructor(inner: FederatedStrategy, o: DifferentialPrivacyOptions) {
    super(inner);
    if (o.mode !== 'central' && o.mode !== 'local') throw bad('mode', 'central or local', o.mode);
    if (!(o.noiseMultiplier >= 0) || !Number.isFinite(o.noiseMultiplier)) throw bad('noiseMultiplier', 'a finite number >= 0', o.noiseMultiplier);
    if (!(o.clip > 0) || !Number.isFinite(o.clip)) throw bad('clip', 'a finite number > 0', o.clip);
    if (inner.mode === 'async') throw bad('strategy', 'synchronous (DP accounts rounds of sampled clients)', inner.name);
    if (o.budget !== undefined) {
      if (!(o.budget.epsilon > 0)) throw bad('budget.epsilon', '> 0', o.budget.epsilon);
      if (!(o.budget.delta > 0 && o.budget.delta < 1)) throw bad('budget.delta', 'in (0, 1)', o.budget.delta);
    }
    this.privacyMode = o.mode;
    this.noiseMultiplier = o.noiseMultiplier;
    this.clip = o.clip;
    this.budget = o.budget ?? null;
    this.delta = o.delta ?? o.budget?.delta ?? 1e-5;
    this.#noise = o.noise ?? new GaussianNoise();
  }

  override configureRound(round: RoundContext): Partial<TrainingConfig> {
    return { ...super.configureRound(round), dp: { mode: this.privacyMode, clip: this.clip, noiseMultiplier: this.noiseMultiplier } };
  }

  /** Central DP weighs each client alike: one client's influence on the sum is at most the clipping norm. */
  override updateWeight(numSamples: number, staleness: number): number | null {
    const w = super.updateWeight(numSamples, staleness);
    return this.privacyMode === 'central' && w !== null ? 1 : w;
  }

  override updateScale(norm: number): number {
    return Math.min(super.updateScale(norm), clipScale(norm, this.clip));
  }

  /** Central DP without secure aggregation: the server adds the noise to the clipped mean. */
  override createAggregator(numParams: number): UpdateAggregator {
    const inner = super.createAggregator(numParams);
    if (this.privacyMode !== 'central') return inner;
    const std = this.noiseMultiplier * this.clip;
    const noise = this.#noise;
    return {
      get buffersUpdates() { return inner.buffersUpdates; },
      get count() { return inner.count; },
      get totalWeight() { return inner.totalWeight; },
      add: (delta, weight, scale) => inner.add(delta, weight, scale),
      result: () => {
        const out = inner.result();
        // Noise on the sum, N(0, (z clip)^2), is noise of std / count on the uniform mean.
        const s = std / Math.max(1, inner.totalWeight);
        for (let i = 0; i < out.length; i++) out[i]! += s * noise.next();
        return out;
      },
    };
  }

  #step(q: number, distributedShare: number): { q: number; z: number } {
    if (this.privacyMode === 'local') return { q: 1, z: this.noiseMultiplier };
    return { q: Math.min(1, q), z: this.noiseMultiplier * Math.sqrt(distributedShare) };
  }

  override roundClosed(round: ClosedRound): void {
    super.roundClosed(round);
    const { q, z } = this.#step(round.contributors / Math.max(1, round.population), round.distributedNoise ? Math.min(1, round.contributors / round.perRound) : 1);
    const one = new RdpAccountant(this.#accountant.orders);
    one.step(q, z);
    this.#accountant.step(q, z);
    this.#last = { epsilonRound: one.epsilon(this.delta), q, distributed: round.distributedNoise };
  }

  override privacySpent(): PrivacySpent {
    return {
      mode: this.privacyMode, distributed: this.#last.distributed, noiseMultiplier: this.noiseMultiplier, clip: this.clip, delta: this.delta,
      epsilonRound: this.#last.epsilonRound, epsilon: this.#accountant.epsilon(this.delta), q: this.#last.q, rounds: this.#accountant.steps,
      budget: this.budget,
    };
  }

  override budgetSpent(next: { population: number; perRound: number }): string | null {
    const b = this.budget;
    if (b === null || this.#accountant.steps === 0) return null;
    const { q, z } = this.#step(next.perRound / Math.max(1, next.population), 1);
    const after = this.#accountant.epsilonAfter(q, z, b.delta);
    if (after <= b.epsilon) return null;
    return `epsilon ${this.#accountant.epsilon(b.delta).toFixed(3)} after ${this.#accountant.steps} rounds; one more would reach ${after.toFixed(3)}, above the budget of ${b.epsilon} at delta ${b.delta}`;
  }

  override settings(): Record<string, unknown> {
    return { ...super.settings(), dp: this.privacyMode, noiseMultiplier: this.noiseMultiplier, clip: this.clip, ...(this.budget ? { dpBudget: this.budget } : {}) };
  }

  override exportState(): Uint8Array | null {
    const inner = super.exportState();
    const json = Buffer.from(JSON.stringify({ rdp: this.#accountant.rdp, steps: this.#accountant.steps, last: this.#last }));
    const head = Buffer.alloc(8);
    head.writeUInt32LE(STATE_MAGIC, 0);
    head.writeUInt32LE(json.length, 4);
    return Buffer.concat([head, json, inner ?? Buffer.alloc(0)]);
  }

  override importState(state: Uint8Array | null): void {
    if (state === null || state.length < 8 || Buffer.from(state.buffer, state.byteOffset, 4).readUInt32LE(0) !== STATE_MAGIC) {
      super.importState(state);
      return;
    }
    const b = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
    const length = b.readUInt32LE(4);
    const saved = JSON.parse(b.subarray(8, 8 + length).toString('utf8')) as { rdp: number[]; steps: number; last: { epsilonRound: number; q: number; distributed: boolean } };
    this.#accountant.restore(saved.rdp, saved.steps);
    this.#last = saved.last;
    const inner = b.subarray(8 + length);
    super.importState(inner.length === 0 ? null : new Uint8Array(inner));
  }
}
