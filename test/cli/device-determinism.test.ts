import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { strata } from './run-strata.js';

interface Figures {
  deviceSeconds: number;
  hostSeconds: number;
  energy: { compute: number; storage: number; radio: number; idle: number; total: number };
  deviceTime: { flops: number; storage: { reads: number; writes: number; readBytes: number; writeBytes: number } };
}

/** One `strata cl` run as a real child process: CarM (async swaps from the store) on a profiled device. */
function run(): Figures {
  const out = mkdtempSync(path.join(tmpdir(), 'strata-determinism-'));
  const r = strata('cl', '--dataset', 'split-synthetic', '--profile', 'jetson-nano-5w', '--memory', '50', '--seed', '3', '--out', out);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Figures;
}

const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), Number.MIN_VALUE);

describe('device time and energy are counted work, not host time', () => {
  it('the same strata cl run gives the same device seconds and joules twice, and once more beside a CPU-burning process', async () => {
    const first = run();
    const second = run();
    // A busy loop in another process competes for this 2-core machine's CPU while the third run trains.
    const burner = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    let loaded: Figures;
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      loaded = run();
    } finally {
      burner.kill('SIGKILL');
    }
    for (const other of [second, loaded]) {
      expect(relDiff(other.deviceSeconds, first.deviceSeconds)).toBeLessThanOrEqual(1e-6);
      expect(relDiff(other.energy.total, first.energy.total)).toBeLessThanOrEqual(1e-6);
      for (const k of ['compute', 'storage', 'radio', 'idle'] as const) {
        expect(relDiff(other.energy[k], first.energy[k]), k).toBeLessThanOrEqual(1e-6);
      }
      expect(other.deviceTime.flops).toBe(first.deviceTime.flops);
      expect(other.deviceTime.storage).toEqual(first.deviceTime.storage);
    }
    expect(first.energy.storage).toBeGreaterThan(0);
    expect(first.deviceTime.storage.reads).toBeGreaterThan(0);
    // What the host took is still reported, as a diagnostic.
    for (const r of [first, second, loaded]) expect(r.hostSeconds).toBeGreaterThan(0);
  });
});
