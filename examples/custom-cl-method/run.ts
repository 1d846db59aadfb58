/**
 * Federated continual learning with a CL method of your own (see app.ts),
 * through the library: each virtual client's classes arrive task by task and
 * it trains with "replay-ramp" over its CarM memory hierarchy.
 *
 *   node dist-examples/custom-cl-method/run.js [outDir]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FedAvg } from 'strata/coordinator';
import { runSimulation, simulationConfig } from 'strata/simulation';

const outDir = process.argv[2] ?? mkdtempSync(path.join(os.tmpdir(), 'strata-replay-ramp-'));
const config = simulationConfig({
  dataset: 'synthetic', cl: true, tasks: 2, clMethod: 'replay-ramp', clients: 4, perRound: 2, rounds: 4, budget: 'off', workers: 1, evalSamples: 500,
});
const report = await runSimulation({ config, strategy: new FedAvg(), clientApp: new URL('./app.js', import.meta.url), outDir });
console.log(JSON.stringify({ method: config.clMethod, finalAccuracy: report.finalAccuracy, cl: report.cl, rounds: report.rounds.length }));
