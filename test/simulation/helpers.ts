import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { simulationStrategy } from '../../cli/strategies.js';
import { compileSimulationConfig, type SimulationConfig } from '../../simulation/simulation-config.js';
import { runSimulation, type SimulationHooks } from '../../simulation/simulation.js';
import type { SimulationReport } from '../../simulation/simulation-report.js';

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

export { finalModelDiff } from '../../testing/model-diff.js';
