/**
 * The inbox takes a file in exactly once: its samples and its key commit
 * together, so a file still there after a crash between the commit and its
 * removal is recognised at the next start (real files, a real SQLite store).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Inbox, type InboxShape } from '../../client-runtime/inbox.js';
import { ArrivalLog, BATCH_KEY_RETENTION_MS } from '../../storage-tier/arrival-log.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'strata-inbox-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const shape: InboxShape = { inputShape: [2, 2, 1], featureType: 'uint8', numClasses: 3 };
const csv = (rows: Array<[number, number[]]>): string => `label,a,b,c,d\n${rows.map(([l, f]) => [l, ...f].join(',')).join('\n')}\n`;

function setup(name: string): { inbox: string; db: string } {
  const dir = path.join(root, name);
  const inbox = path.join(dir, 'inbox');
  mkdirSync(inbox, { recursive: true });
  return { inbox, db: path.join(dir, 'device.db') };
}

describe('ArrivalLog keys', () => {
  it('a batch offered again under its key adds nothing, also on a new connection; old keys are dropped', () => {
    const { db } = setup('keys');
    const log = ArrivalLog.open(db, { featureSize: 4, featureType: 'uint8' });
    const batch = [{ label: 1, features: new Uint8Array([1, 2, 3, 4]) }, { label: 2, features: new Uint8Array([5, 6, 7, 8]) }];
    expect(log.append(batch, 'k1')).toEqual({ lastId: 2, added: 2 });
    expect(log.append(batch, 'k1')).toEqual({ lastId: 2, added: 0 });
    expect(log.append(batch)).toEqual({ lastId: 4, added: 2 }); // no key: always taken in
    log.close();
    const again = ArrivalLog.open(db, { featureSize: 4, featureType: 'uint8' });
    expect(again.append(batch, 'k1')).toEqual({ lastId: 4, added: 0 });
    expect(again.count()).toBe(4);
    again.close();
    // A key older than the retention goes at the next keyed append.
    const raw = new Database(db);
    raw.prepare("UPDATE arrival_batches SET taken_at = ? WHERE key = 'k1'").run(Date.now() - BATCH_KEY_RETENTION_MS - 1000);
    raw.close();
    const later = ArrivalLog.open(db, { featureSize: 4, featureType: 'uint8' });
    expect(later.append([], 'k2')).toEqual({ lastId: 4, added: 0 });
    later.close();
    const check = new Database(db, { readonly: true });
    expect(check.prepare('SELECT key FROM arrival_batches ORDER BY key').pluck().all()).toEqual(['k2']);
    check.close();
  });
});

describe('Inbox', () => {
  it('a file whose samples committed before a crash kept it from being removed is removed at the next start, not taken in twice', async () => {
    const { inbox, db } = setup('crash');
    writeFileSync(path.join(inbox, 'a.csv'), csv([[0, [1, 2, 3, 4]], [2, [9, 9, 9, 9]]]));
    const log = ArrivalLog.open(db, { featureSize: 4, featureType: 'uint8' });
    // First life: the commit happens, then the process dies before the file is removed.
    const dying = new Inbox({
      dir: inbox, shape,
      ingest: (samples, options) => {
        log.append(samples, options.key);
        throw new Error('killed between the commit and the removal');
      },
    });
    await dying.scan();
    expect(log.count()).toBe(2);
    expect(existsSync(path.join(inbox, 'a.csv'))).toBe(true);
    // Next start: the same file, plus a new one with the same rows under another name.
    writeFileSync(path.join(inbox, 'b.csv'), csv([[0, [1, 2, 3, 4]], [2, [9, 9, 9, 9]]]));
    const restarted = new Inbox({ dir: inbox, shape, ingest: (samples, options) => log.append(samples, options.key) });
    await restarted.scan();
    expect(readdirSync(inbox)).toEqual([]);
    expect(log.count()).toBe(4); // a.csv once, b.csv once
    // The same name with other bytes is a new file.
    writeFileSync(path.join(inbox, 'a.csv'), csv([[1, [0, 0, 0, 1]]]));
    await restarted.scan();
    expect(log.count()).toBe(5);
    log.close();
  });
});
