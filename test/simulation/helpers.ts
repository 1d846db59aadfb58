import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { simulationStrategy } from '../../cli/strategies.js';
import { compileSimulationConfig, type SimulationConfig } from '../../simulation/simulation-config.js';
import { runSimulation, type SimulationHooks } from '../../simulation/simulation.js';
import type { SimulationReport } from '../../simulation/simulation-report.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';

export const silentLogger: Logger = pino({ level: process.env['STRATA_TEST_LOG'] ?? 'silent' });

export function tmpDir(prefix = 'strata-sim-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A small, fast run on the synthetic data set with budgets off unless asked. */
export function smallConfig(over: Partial<SimulationConfig> = {}): SimulationConfig {
  return compileSimulationConfig({
    flags: { dataset: 'synthetic', clients: 6, perRound: 3, rounds: 2, budget: 'off', workers: 2, slotsPerWorker: 2, evalSamples: 500, batch: 32, ...over },
  });
}

/** `runSimulation` with the strategy the config names (as `strata simulate` builds it). */
export function simulate(config: SimulationConfig, outDir: string, hooks: SimulationHooks = {}): Promise<SimulationReport> {
  return runSimulation({ config, strategy: simulationStrategy(config), outDir, logger: silentLogger, hooks });
}

/** The largest |difference| between the final models of two runs' stores. */
export function finalModelDiff(storeA: string, storeB: string): number {
  const read = (f: string): Float32Array => {
    const s = CoordinatorStore.open(f);
    try {
      return s.latestModel()!.weights;
    } finally {
      s.close();
    }
  };
  const a = read(storeA);
  const b = read(storeB);
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
