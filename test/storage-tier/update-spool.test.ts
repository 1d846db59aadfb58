import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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

  it("keeps a finished round's file for the next round to write over; a second finished file is removed", async () => {
    const spool = new FileSpool(tmp.file('r.db'));
    spool.append(1, Buffer.from('round one, first frame'));
    spool.append(1, Buffer.from('round one, second frame'));
    spool.drop(1);
    expect(readdirSync(spool.dir)).toEqual(['recycled.frames']);
    // Round 2 takes the file and writes from its start; the older bytes past its end are never pointed at.
    const a = spool.append(2, Buffer.from('two'));
    expect(a).toEqual({ offset: 0, length: 3 });
    const b = spool.append(2, Buffer.from('two again'));
    expect(b).toEqual({ offset: 3, length: 9 });
    expect(spool.read(2, a)?.toString()).toBe('two');
    expect(spool.read(2, b)?.toString()).toBe('two again');
    expect(readdirSync(spool.dir)).toEqual(['round-2.frames']);
    expect(statSync(path.join(spool.dir, 'round-2.frames')).size).toBe(45);
    // Two rounds open at once (a restart resumes one while none is kept): the second to finish is removed.
    spool.append(3, Buffer.from('three'));
    spool.drop(2);
    spool.drop(3);
    await until(() => readdirSync(spool.dir).length === 1);
    expect(readdirSync(spool.dir)).toEqual(['recycled.frames']);
    // Applied rounds' bytes do not outlive the store: closing removes the kept file.
    spool.close();
    expect(readdirSync(spool.dir)).toEqual([]);
  });

  it('at start-up removes a kept file a killed process left, and a reopened round appends after what its file holds', () => {
    const killed = new FileSpool(tmp.file('k.db'));
    killed.append(1, Buffer.from('round one, applied'));
    killed.drop(1);
    killed.append(2, Buffer.from('two')); // Written over the start of round 1's bytes.
    killed.append(3, Buffer.from('three'));
    killed.drop(3); // Kept, and the process dies without closing.
    expect(readdirSync(killed.dir).sort()).toEqual(['recycled.frames', 'round-2.frames']);
    const restarted = new FileSpool(tmp.file('k.db'));
    restarted.retainOnly(new Set([2]));
    expect(readdirSync(restarted.dir)).toEqual(['round-2.frames']);
    expect(restarted.read(2, { offset: 0, length: 3 })?.toString()).toBe('two');
    expect(restarted.append(2, Buffer.from('more'))).toEqual({ offset: 18, length: 4 });
    expect(restarted.read(2, { offset: 18, length: 4 })?.toString()).toBe('more');
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
