import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSpool } from '../../storage-tier/update-spool.js';
import { tempDir, type TempDir } from './helpers.js';

let tmp: TempDir;
beforeAll(() => {
  tmp = tempDir('strata-spool-test-');
});
afterAll(() => tmp.remove());

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
}

describe('FileSpool', () => {
  it('reads back what it appended; a dropped round frees its name at once and its file goes off the event loop', async () => {
    const spool = new FileSpool(tmp.file('a.db'));
    const a = spool.append(1, Buffer.from('first frame'));
    const b = spool.append(1, Buffer.from('second'));
    expect(b).toEqual({ offset: a.length, length: 6 });
    expect(spool.read(1, b)?.toString()).toBe('second');
    spool.drop(1);
    expect(spool.read(1, b)).toBeUndefined();
    // The same round id starts a new file at once, untouched by the pending removal.
    const c = spool.append(1, Buffer.from('again'));
    expect(c).toEqual({ offset: 0, length: 5 });
    await until(() => readdirSync(spool.dir).length === 1);
    expect(readdirSync(spool.dir)).toEqual(['round-1.frames']);
    expect(spool.read(1, c)?.toString()).toBe('again');
    spool.drop(7); // never written: nothing to do
    spool.close();
  });

  it('at start-up removes the spools of applied rounds and removals a crash interrupted, keeping the open rounds', () => {
    const spool = new FileSpool(tmp.file('b.db'));
    spool.append(3, Buffer.from('three'));
    spool.append(4, Buffer.from('four'));
    spool.close();
    writeFileSync(path.join(spool.dir, 'dropped-999-1.frames'), 'left by a killed process');
    const restarted = new FileSpool(tmp.file('b.db'));
    restarted.retainOnly(new Set([4]));
    expect(readdirSync(restarted.dir)).toContain('round-4.frames');
    expect(readdirSync(restarted.dir)).not.toContain('round-3.frames');
    expect(readdirSync(restarted.dir).some((n) => n.startsWith('dropped-') && n.includes('-999-'))).toBe(false);
    expect(restarted.read(4, { offset: 0, length: 4 })?.toString()).toBe('four');
    restarted.retainOnly(new Set());
    restarted.close();
  });

  it('removes the spool directory when no round is open', async () => {
    const spool = new FileSpool(tmp.file('c.db'));
    spool.append(1, Buffer.from('x'));
    spool.drop(1);
    spool.retainOnly(new Set());
    await until(() => !existsSync(spool.dir));
    expect(existsSync(spool.dir)).toBe(false);
  });
});
