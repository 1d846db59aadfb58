import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bin, root } from './processes.js';

function strata(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, STRATA_LOG_LEVEL: 'warn' } });
  return { code: r.status, stderr: r.stderr };
}

const base = ['agent', '--url', 'ws://127.0.0.1:1', '--token', 't', '--db', '/tmp/strata-agent-cli-unused.sqlite'];

describe('strata agent: bad input', () => {
  it.each([
    [[...base, '--shard', '5/5'], '--shard'],
    [[...base, '--shard', 'two'], '--shard'],
    [['agent', '--url', 'http://x', '--token', 't', '--db', 'x'], '--url'],
    [['agent', '--url', 'ws://127.0.0.1:1', '--db', 'x'], '--token'],
    [[...base, '--dataset', 'split-nothing'], '--dataset'],
    [[...base, '--agent-id', 'has space'], '--agent-id'],
    [[...base, '--skew', '1.5'], '--skew'],
    // --host-speed-factor has no effect any more (device time is counted work) but old commands still parse: the error is the shard's.
    [[...base, '--host-speed-factor', '2', '--shard', '5/5'], '--shard'],
  ])('%j exits 2 with one line naming %s', (args, flag) => {
    const r = strata(...args);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(flag);
  });
});
