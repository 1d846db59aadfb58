import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { compileSimulationConfig } from '../simulation/simulation-config.js';
import { runSimulation } from '../simulation/simulation-host.js';
import type { SimulationReport } from '../simulation/simulation-report.js';
import type { Benchmark } from './benchmark.js';

/**
 * Issue 6: the same 100-client, 10-round run (MNIST, MLP, 10 per round,
 * mixed profiles, budgets enforced) with FedHC's mechanisms (`scheduled`:
 * long-lived workers, resource sharing, budget packing) and without them
 * (`naive`: a fresh process per client, one after another), back to back in
 * one process. Same seed, so the two must end with the same model.
 * `STRATA_BENCH_SIM_ROUNDS` / `STRATA_BENCH_SIM_CLIENTS` shrink it for a quick look.
 */
const bench: Benchmark = {
  description: 'strata simulate: scheduled (FedHC process manager + scheduler) vs naive (process per client), 100 clients x 10 rounds, MNIST MLP, budgets on',
  async run({ log }) {
    const logger = pino({ level: process.env['STRATA_LOG_LEVEL'] ?? 'warn' });
    const base = compileSimulationConfig({
      flags: {
        dataset: 'mnist', model: 'mlp', clients: Number(process.env['STRATA_BENCH_SIM_CLIENTS'] ?? 100), perRound: 10,
        rounds: Number(process.env['STRATA_BENCH_SIM_ROUNDS'] ?? 10), profiles: 'mixed', budget: 'auto', seed: 1,
      },
    });
    const out: Record<string, SimulationReport> = {};
    for (const mode of ['scheduled', 'naive'] as const) {
      const dir = mkdtempSync(path.join(tmpdir(), `strata-bench-sim-${mode}-`));
      const r = await runSimulation({ ...base, mode }, dir, logger, {
        onRound: (rr, n) => log(`  ${mode.padEnd(9)} round ${String(rr.round).padStart(2)}/${n}: accuracy ${rr.accuracy.toFixed(4)}, wall ${rr.wallSeconds.toFixed(1)} s, virtual ${rr.virtualSeconds.toFixed(1)} s`),
      });
      out[mode] = r;
      log(`${mode.padEnd(9)} wall ${r.wallSeconds.toFixed(1)} s, final accuracy ${r.finalAccuracy.toFixed(4)}, budgets ${r.enforcer.kind}, peak RSS ${(r.memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
    }
    const s = out['scheduled']!;
    const n = out['naive']!;
    const speedup = n.wallSeconds / s.wallSeconds;
    log(`speedup ${speedup.toFixed(2)}x (target >= 3x; FedHC reports 2.75x); accuracy scheduled ${s.finalAccuracy.toFixed(4)} vs naive ${n.finalAccuracy.toFixed(4)} (${s.finalAccuracy === n.finalAccuracy ? 'equal' : 'DIFFERENT'})`);
    return {
      speedup,
      scheduledAccuracy: s.finalAccuracy,
      naiveAccuracy: n.finalAccuracy,
      equalAccuracy: s.finalAccuracy === n.finalAccuracy,
      scheduledWallSeconds: s.wallSeconds,
      naiveWallSeconds: n.wallSeconds,
      enforcer: s.enforcer.kind,
      scheduledUtilisation: s.scheduler.mode === 'scheduled' ? s.scheduler.meanUtilisation : null,
      scheduledPeakRssBytes: s.memory.peakRssBytes,
      virtualSeconds: s.virtualSeconds,
      clients: base.clients,
      rounds: base.rounds,
    };
  },
};

export default bench;
