import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { strata } from '../cli/run-strata.js';
import { tmpDir } from './helpers.js';

describe('strata simulate (command line)', () => {
  it.each([
    [['--rounds', '0'], '--rounds'],
    [['--partition', 'dirichlet:-1'], '--partition'],
    [['--budget', 'sometimes'], '--budget'],
    [['--mode', 'fast'], '--mode'],
    [['--strategy', 'fedsgd'], '--strategy'],
    [['--clients', '3', '--per-round', '5'], 'perRound'],
    [['--profiles', 'toaster'], 'toaster'],
    [['--config', '/nonexistent/sim.json'], '--config'],
  ])('bad input %j exits non-zero with one line naming %s', (args, name) => {
    const r = strata('simulate', '--out', tmpDir(), ...args);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });

  it('an invalid config file names the key; flags override the file', () => {
    const dir = tmpDir();
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rounds: 2, perRund: 3 }));
    const r1 = strata('simulate', '--config', bad, '--out', dir);
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain('"perRund"');
    writeFileSync(bad, JSON.stringify({ rounds: 'two' }));
    const r2 = strata('simulate', '--config', bad, '--out', dir);
    expect(r2.stderr).toMatch(/bad\.json: key "rounds"/);

    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ dataset: 'synthetic', clients: 4, perRound: 2, rounds: 5, budget: 'off', workers: 1, evalSamples: 200 }));
    const out = path.join(dir, 'run');
    const r = strata('simulate', '--config', good, '--rounds', '1', '--out', out, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { config: { rounds: number; clients: number }; rounds: unknown[]; finalAccuracy: number };
    expect(report.config.rounds).toBe(1);
    expect(report.config.clients).toBe(4);
    expect(report.rounds).toHaveLength(1);
    expect(JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')).finalAccuracy).toBe(report.finalAccuracy);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('chart-utilisation');
  });
});
