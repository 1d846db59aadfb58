/**
 * `pinYoungGeneration()` in a child node process (it changes a process-wide
 * V8 flag): with it, a burst of long-lived objects (what 1,000 connections
 * are) no longer grows the new space; without it, the same burst does.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const moduleUrl = new URL(`file://${path.join(root, 'dist/coordinator/young-generation.js')}`).href;

interface Outcome { pin: { pinned: boolean; newSpaceBytes: number; reason?: string } | null; before: number; after: number }

function burst(pin: boolean, nodeFlags: string[] = []): Outcome {
  const script = `
    const { pinYoungGeneration, newSpaceBytes } = await import(${JSON.stringify(moduleUrl)});
    // Warm-up, as a daemon loading its modules: scavenges commit the new space and grow it somewhat.
    let garbage = [];
    for (let i = 0; i < 200_000; i++) {
      garbage.push({ i, s: 'g' + i });
      if (garbage.length === 1000) garbage = [];
    }
    const pin = ${pin} ? pinYoungGeneration() : null;
    const before = newSpaceBytes();
    const kept = [];
    for (let i = 0; i < 2000; i++) kept.push(Array.from({ length: 200 }, (_, j) => ({ j, s: 'x' + j })));
    process.stdout.write(JSON.stringify({ pin, before, after: newSpaceBytes(), kept: kept.length + garbage.length }));
  `;
  const r = spawnSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Outcome;
}

describe('young generation pin', () => {
  it('keeps the new space at its size when the pin was set', () => {
    const grown = burst(false);
    expect(grown.after).toBeGreaterThan(grown.before);
    const pinned = burst(true);
    expect(pinned.pin).toMatchObject({ pinned: true });
    expect(pinned.after).toBe(pinned.before);
  });

  it('leaves V8 alone when node was given a semi-space flag', () => {
    const given = burst(true, ['--max-semi-space-size=4']);
    expect(given.pin).toMatchObject({ pinned: false, reason: expect.stringContaining('--max-semi-space-size') });
  });
});
