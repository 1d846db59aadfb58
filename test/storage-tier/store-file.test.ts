import { closeSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, SampleStore, sampleStoreMigrations, STRATA_APPLICATION_ID, type Migration } from '../../storage-tier/index.js';
import { samplesOfClasses, seededRng, tempDir, type TempDir } from './helpers.js';

let tmp: TempDir;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.remove());

/** The StrataError `SampleStore.open` throws, checked to name the file. */
function openError(file: string, options: Parameters<typeof SampleStore.open>[1] = {}): { code: string; message: string } {
  try {
    SampleStore.open(file, options).close();
  } catch (err) {
    expect(err).toMatchObject({ name: 'StrataError', details: { file } });
    expect((err as Error).message).toContain(file);
    return err as { code: string; message: string };
  }
  throw new Error(`opening ${file} did not fail`);
}

describe('opening store files', () => {
  it('refuses a text file as not a Strata store', () => {
    const file = tmp.file('notes.txt');
    writeFileSync(file, 'these are not the samples you are looking for\n'.repeat(200));
    expect(openError(file).code).toBe('STRATA_ERR_STORE_NOT_STRATA');
    expect(openError(file, { readonly: true }).code).toBe('STRATA_ERR_STORE_NOT_STRATA');
  });

  it('refuses an SQLite database of another application, and leaves it untouched', () => {
    const file = tmp.file('other-app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
    db.close();
    expect(openError(file).code).toBe('STRATA_ERR_STORE_NOT_STRATA');
    const again = new Database(file);
    expect(again.pragma('application_id', { simple: true })).toBe(0);
    expect(again.pragma('journal_mode', { simple: true })).toBe('delete');
    again.close();

    const tagged = tmp.file('wrong-app-id.db');
    const db2 = new Database(tagged);
    db2.pragma('application_id = 12345');
    db2.close();
    expect(openError(tagged).code).toBe('STRATA_ERR_STORE_NOT_STRATA');
  });

  it('refuses a corrupt store', () => {
    const file = tmp.file('corrupt.db');
    const store = SampleStore.open(file);
    for (let task = 0; task < 5; task++) store.ingest(samplesOfClasses(task, [2 * task, 2 * task + 1], 300));
    store.close(); // checkpoints the WAL into the file
    const size = statSync(file).size;
    expect(size).toBeGreaterThan(1_000_000);
    // Scribble over 16 pages in the middle of the file, header left intact.
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(16 * 4096, 0xa5), 0, 16 * 4096, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);
    expect(openError(file).code).toBe('STRATA_ERR_STORE_CORRUPT');
    // Without the open-time check, the damage surfaces as the same code on first use.
    const unchecked = SampleStore.open(file, { integrityCheck: 'off', rng: seededRng(5) });
    let code: unknown;
    try {
      for (let i = 0; i < 2000; i++) unchecked.fetchManyRandomOfClasses([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      unchecked.ingest(samplesOfClasses(9, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 200));
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    unchecked.close();
    expect(code).toBe('STRATA_ERR_STORE_CORRUPT');
  });

  it('refuses a store written by a newer Strata, and a read-only open of an outdated one', () => {
    const file = tmp.file('newer.db');
    SampleStore.open(file).close();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(openError(file).code).toBe('STRATA_ERR_STORE_TOO_NEW');

    const old = tmp.file('outdated.db');
    const db2 = new Database(old);
    db2.pragma(`application_id = ${STRATA_APPLICATION_ID}`);
    db2.exec('CREATE TABLE placeholder (x)');
    db2.close();
    expect(openError(old, { readonly: true }).code).toBe('STRATA_ERR_STORE_OUTDATED');
  });
});

describe('migrations', () => {
  it('applies pending migrations in order and reports them', () => {
    const db = new Database(':memory:');
    const first = migrate(db, sampleStoreMigrations);
    const latest = sampleStoreMigrations.length;
    expect(first).toEqual({ from: 0, to: latest, applied: sampleStoreMigrations.map((m) => ({ version: m.version, name: m.name })) });
    expect(migrate(db, sampleStoreMigrations)).toEqual({ from: latest, to: latest, applied: [] });

    const next: Migration = { version: latest + 1, name: 'add note', up: (d) => d.exec('ALTER TABLE samples ADD COLUMN note TEXT') };
    const broken: Migration = { version: latest + 2, name: 'broken', up: (d) => d.exec('ALTER TABLE nowhere ADD COLUMN x') };
    const result = migrate(db, [...sampleStoreMigrations, next, broken]);
    expect(result).toMatchObject({ from: latest, to: latest + 1, applied: [{ version: latest + 1, name: 'add note' }], failed: { version: latest + 2, name: 'broken' } });
    expect(db.pragma('user_version', { simple: true })).toBe(latest + 1);
    db.close();
  });

  it('reports a failed migration on open as a coded error', () => {
    // A store whose version was reset behind Strata's back: migration 1 fails
    // (its tables exist), is rolled back, and the open says so with a code.
    const file = tmp.file('migration.db');
    SampleStore.open(file).close();
    const db = new Database(file);
    db.pragma('user_version = 0');
    db.close();
    expect(openError(file).code).toBe('STRATA_ERR_STORE_MIGRATION');
  });
});
