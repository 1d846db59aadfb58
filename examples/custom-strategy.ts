/**
 * A custom aggregation strategy: FedAvg with server momentum (FedAvgM, Hsu
 * et al. 2019), written against the public `FederatedStrategy` interface and
 * run by the simulation's round engine (the same engine the coordinator
 * daemon runs). It also picks its own clients: the most reliable first.
 *
 *   node dist-examples/custom-strategy.js [outDir]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  MeanAccumulator, type FederatedStrategy, type RoundContext, type SelectionCandidate, type SelectionContext, type UpdateAggregator,
} from 'strata/coordinator';
import type { TrainingConfig } from 'strata/protocol';
import { runSimulation, simulationConfig } from 'strata/simulation';

class FedAvgM implements FederatedStrategy {
  readonly name = 'fedavgm';
  readonly mode = 'sync' as const;
  #velocity: Float32Array | null = null;

  constructor(readonly serverLearningRate = 1, readonly momentum = 0.5) {}

  configureRound(_round: RoundContext): Partial<TrainingConfig> {
    return {};
  }

  selectClients(candidates: readonly SelectionCandidate[], count: number, context: SelectionContext): readonly string[] {
    // Most reliable first; ties broken by the round's seeded draw, so a run repeats exactly.
    return candidates
      .map((c) => ({ id: c.id, key: c.reliability + 1e-3 * context.random() }))
      .sort((a, b) => b.key - a.key)
      .slice(0, count)
      .map((c) => c.id);
  }

  updateWeight(numSamples: number, _staleness: number): number {
    return Math.max(1, numSamples);
  }

  createAggregator(numParams: number): UpdateAggregator {
    return new MeanAccumulator(numParams);
  }

  applyAggregate(global: Float32Array, aggregate: Float32Array): Float32Array {
    const v = (this.#velocity ??= new Float32Array(global.length));
    for (let i = 0; i < global.length; i++) {
      v[i] = this.momentum * v[i]! + aggregate[i]!;
      global[i]! += this.serverLearningRate * v[i]!;
    }
    return global;
  }

  settings(): Record<string, unknown> {
    return { serverLearningRate: this.serverLearningRate, momentum: this.momentum };
  }

  exportState(): Uint8Array | null {
    return this.#velocity === null ? null : new Uint8Array(this.#velocity.buffer.slice(0));
  }

  importState(state: Uint8Array | null): void {
    this.#velocity = state === null ? null : new Float32Array(state.buffer.slice(state.byteOffset, state.byteOffset + state.byteLength));
  }
}

const outDir = process.argv[2] ?? mkdtempSync(path.join(os.tmpdir(), 'strata-fedavgm-'));
const config = simulationConfig({ dataset: 'mnist', clients: 6, perRound: 3, rounds: 3, samplesPerRound: 300, budget: 'off', workers: 1, evalSamples: 2000, seed: 3 });
const report = await runSimulation({ config, strategy: new FedAvgM(), outDir });
console.log(JSON.stringify({
  strategy: report.strategy, rounds: report.rounds.map((r) => ({ round: r.round, accuracy: r.accuracy, participants: r.participants })),
  finalAccuracy: report.finalAccuracy,
}));
