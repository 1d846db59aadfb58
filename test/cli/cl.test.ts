import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { strata } from './run-strata.js';


describe('strata cl', () => {
  it('runs CarM on split-synthetic and writes report.json (contract keys) and report.html', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'strata-cl-cli-'));
    const r = strata('cl', '--dataset', 'split-synthetic', '--method', 'er', '--memory', '40', '--storage', 'all', '--swap', 'async',
      '--swap-ratio', '0.5', '--policy', 'dynamic', '--seed', '2', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual(report);
    for (const key of ['accuracyMatrix', 'finalAverageAccuracy', 'averageIncrementalAccuracy', 'forgetting', 'backwardTransfer',
      'trainSeconds', 'samplesPerSecond', 'swap', 'config', 'emBytes', 'storeBytes', 'backend']) {
      expect(report).toHaveProperty(key);
    }
    expect(report['accuracyMatrix']).toHaveLength(5);
    expect(report['config']).toMatchObject({ method: 'er', memory: 40, storage: 'all', swap: 'async', policy: 'dynamic', seed: 2 });
    expect((report['swap'] as { applied: number }).applied).toBeGreaterThan(0);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('id="accuracy-matrix"');
    expect(html).toContain('<canvas id="chart-seen"');
    expect(html).not.toMatch(/<script[^>]+src=/); // self-contained
  });

  it.each([
    [['cl', '--storage', 'lots'], '--storage'],
    [['cl', '--swap-ratio', '1.5'], '--swap-ratio'],
    [['cl', '--policy', 'lru'], '--policy'],
    [['cl', '--method', 'icarl'], '--method'],
    [['cl', '--profile', 'toaster'], 'toaster'],
    [['cl', '--dataset', 'mnist'], '--dataset'],
  ])('bad input %j is one line naming %s', (args, what) => {
    const r = strata(...args, '--out', mkdtempSync(path.join(tmpdir(), 'strata-cl-bad-')));
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(what);
  });
});
