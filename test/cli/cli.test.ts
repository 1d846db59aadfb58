import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, strata } from './run-strata.js';


describe('the strata command', () => {
  it('prints usage for --help and train --help', () => {
    const top = strata('--help');
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Usage: strata');
    expect(top.stdout).toContain('train');
    const train = strata('train', '--help');
    expect(train.code).toBe(0);
    for (const flag of ['--dataset', '--model', '--epochs', '--batch', '--seed', '--backend', '--threads', '--out', '--json']) expect(train.stdout).toContain(flag);
  });

  it('the built bin runs by itself, as `npx strata` runs it (executable, with its shebang)', () => {
    const bin = path.join(root, 'dist/cli/strata.js');
    expect(statSync(bin).mode & 0o111).not.toBe(0);
    const r = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: strata');
  });

  it.each([
    [['train', '--epochs', '0'], '--epochs'],
    [['train', '--epochs', 'two'], '--epochs'],
    [['train', '--batch', '-3'], '--batch'],
    [['train', '--model', 'transformer'], '--model'],
    [['train', '--dataset', 'cifar'], '--dataset'],
    [['train', '--backend', 'gpu'], '--backend'],
    [['train', '--lr', 'NaN'], '--lr'],
    [['train', '--threads', 'many'], '--threads'],
    [['train', '--no-such-flag'], '--no-such-flag'],
  ])('bad input %j exits non-zero with one line naming %s', (args, flag) => {
    const r = strata(...args);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(flag);
    expect(lines[0]).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  });

  it('an explicitly requested backend that is missing is a clear error', () => {
    const r = strata('train', '--dataset', 'synthetic', '--backend', 'tfjs-node', '--out', mkdtempSync(path.join(tmpdir(), 'strata-cli-')));
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/backend tfjs-node is not available/);
  });

  it('train writes report.json with the contract keys and --json prints it last', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'strata-cli-'));
    const r = strata('train', '--dataset', 'synthetic', '--epochs', '1', '--batch', '32', '--seed', '4', '--out', out, '--json');
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(printed).toEqual(report);
    for (const key of ['dataset', 'model', 'backend', 'epochs', 'batchSize', 'seed', 'testAccuracy', 'trainSeconds', 'samplesPerSecond']) {
      expect(report).toHaveProperty(key);
    }
    expect(report).toMatchObject({ dataset: 'synthetic', model: 'mlp', backend: 'wasm', epochs: 1, batchSize: 32, seed: 4 });
    expect(report['threads']).toBeGreaterThanOrEqual(1);
    expect(report['testAccuracy']).toBeGreaterThan(0.8);
    expect(report['samplesPerSecond']).toBeGreaterThan(0);
  });

  it('profiles lists the device profiles; an unknown one is a clear error', () => {
    const r = strata('profiles');
    expect(r.code).toBe(0);
    for (const name of ['jetson-nano-5w', 'raspberry-pi-4', 'phone-lowend']) expect(r.stdout).toContain(name);
    // The price list: what counted work costs each device.
    expect(r.stdout).toMatch(/price list/);
    expect(r.stdout).toMatch(/GFLOP\/s\s+J\/GFLOP/);
    const json = JSON.parse(strata('profiles', '--json').stdout) as { name: string; compute: { gflops: number }; priceList: { compute: { flopsPerSecond: number } } }[];
    for (const p of json) expect(p.priceList.compute.flopsPerSecond).toBeCloseTo(p.compute.gflops * 1e9, 0);
    const bad = strata('profiles', 'toaster');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('toaster');
  });
});
