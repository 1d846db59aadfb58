#!/usr/bin/env node
/**
 * `npm run bench [-- NAME ...]`: runs benchmarks, prints their figures and
 * writes each one's to `bench-results/NAME.json`. Never part of `npm test`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Benchmark, BenchFigures } from './benchmark.js';

const registry: Record<string, () => Promise<{ default: Benchmark }>> = {
  train: () => import('./train.js'),
  storage: () => import('./storage.js'),
  coordinator: () => import('./coordinator.js'),
  swap: () => import('./swap.js'),
  cl: () => import('./cl.js'),
  simulate: () => import('./simulate.js'),
  miro: () => import('./miro.js'),
  data: () => import('./data.js'),
  distributed: () => import('./distributed.js'),
  secagg: () => import('./secagg.js'),
};

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const selected = names.length > 0 ? names : Object.keys(registry);
  for (const name of selected) {
    if (!(name in registry)) {
      process.stderr.write(`strata bench: unknown benchmark '${name}' (known: ${Object.keys(registry).join(', ')})\n`);
      process.exitCode = 2;
      return;
    }
  }
  const outDir = path.resolve('bench-results');
  mkdirSync(outDir, { recursive: true });
  for (const name of selected) {
    const loader = registry[name]!;
    const bench = (await loader()).default;
    process.stdout.write(`\n== bench ${name}: ${bench.description}\n`);
    const started = Date.now();
    const figures: BenchFigures = await bench.run({ log: (line) => process.stdout.write(`${line}\n`) });
    const result = { benchmark: name, finishedAt: new Date().toISOString(), seconds: (Date.now() - started) / 1000, ...figures };
    writeFileSync(path.join(outDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(figures)}\n-> bench-results/${name}.json\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`strata bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
