import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { strata } from './run-strata.js';

describe('privacy flags', () => {
  it.each([
    [['coordinator', '--db', ':memory:', '--dp', 'central', '--dp-noise-multiplier', '1'], '--dp-clip', 'STRATA_ERR_BAD_FLAG'],
    [['coordinator', '--db', ':memory:', '--dp', 'local', '--dp-clip', '1'], '--dp-noise-multiplier', 'STRATA_ERR_BAD_FLAG'],
    [['coordinator', '--db', ':memory:', '--dp-epsilon', '8'], '--dp-epsilon', 'STRATA_ERR_BAD_FLAG'],
    [['coordinator', '--db', ':memory:', '--secagg-neighbours', '4'], '--secagg-neighbours', 'STRATA_ERR_BAD_FLAG'],
    [['coordinator', '--db', ':memory:', '--secure-aggregation', '--secagg-neighbours', '5'], '--secagg-neighbours', 'STRATA_ERR_BAD_FLAG'],
    [['coordinator', '--db', ':memory:', '--dp', 'always'], '--dp', 'STRATA_ERR_BAD_FLAG'],
    [['simulate', '--dp', 'central', '--dp-clip', '1'], '--dp-noise-multiplier', 'STRATA_ERR_BAD_FLAG'],
    [['agent', '--url', 'ws://127.0.0.1:1', '--token', 't', '--db', ':memory:', '--dp', 'local', '--dp-clip', '1'], '--dp-noise-multiplier', 'STRATA_ERR_BAD_FLAG'],
  ])('%j exits 2 with one line naming %s', (args, flag, code) => {
    const r = strata(...args);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(code);
    expect(lines[0]).toContain(flag);
  });

  it('a coordinator with secure aggregation refuses a strategy that needs individual updates, before it listens', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-secagg-cli-'));
    try {
      const r = strata('coordinator', '--db', path.join(dir, 'c.db'), '--model', 'flat:10', '--port', '0', '--secure-aggregation', '--strategy', 'median', '--out', path.join(dir, 'out'));
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^strata: STRATA_ERR_SECAGG_INCOMPATIBLE\b.*median/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
