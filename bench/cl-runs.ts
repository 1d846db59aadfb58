import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { CL_DEFAULTS, runClExperiment, type ClConfig, type ClReport } from '../client-runtime/cl-experiment.js';
import { initBackend } from '../ml/backend.js';

/**
 * One `strata cl` experiment in this process, in a throwaway directory. The
 * training loop gets one thread in every arm, so the comparisons are of the
 * loop's work: CarM's writer and swap threads then have the other core, as a
 * device's I/O threads do (with a training thread pool on both cores, they
 * would stall its kernels instead).
 */
export async function clRun(over: Partial<ClConfig>): Promise<ClReport> {
  const backend = await initBackend({ backend: process.env['STRATA_BACKEND'] ?? 'auto', threads: 1 });
  const dir = mkdtempSync(path.join(tmpdir(), 'strata-bench-cl-'));
  try {
    return await runClExperiment({ ...CL_DEFAULTS, dataset: 'split-mnist', ...over }, dir, backend, pino({ level: 'silent' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { mean, median } from './stats.js';
