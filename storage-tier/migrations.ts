/**
 * Versioned schema migrations for a Strata store file. The file's schema
 * version lives in `PRAGMA user_version`; each migration runs in its own
 * transaction together with the bump of that version, so a crash leaves the
 * file at a whole version, never between two.
 */
import type { SqliteDatabase } from './sqlite.js';

export interface Migration {
  /** The schema version this migration produces (1, 2, ... without gaps). */
  readonly version: number;
  readonly name: string;
  up(db: SqliteDatabase): void;
}

export interface MigrationResult {
  /** `user_version` found on open (0 for a new file). */
  from: number;
  /** `user_version` after migrating (equals `from` when nothing ran). */
  to: number;
  applied: Array<{ version: number; name: string }>;
  /** The migration that failed (its transaction was rolled back), if any. */
  failed?: { version: number; name: string; error: unknown };
}

/**
 * Schema of the sample store.
 *
 * `samples.ord` is a dense ordinal per class: the class's rows hold
 * 0..count-1 exactly, so "a random stored sample of class c" is one lookup of
 * (label, floor(r * count)), never `ORDER BY RANDOM()`: since schema 3 the
 * rowid itself (`slot` = ord * 2^24 + label), before it `samples_by_class`;
 * since schema 4 the slot is the only place label and ord live.
 * Eviction keeps it dense by moving the class's last ordinal into the hole.
 * `sample_classes` holds each class's count and payload bytes, written in the
 * same transaction as the rows, so they are right after any crash.
 */
export const sampleStoreMigrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'create samples, sample_classes, store_meta',
    up(db: SqliteDatabase): void {
      db.exec(`
        CREATE TABLE samples (
          id       INTEGER PRIMARY KEY,  -- insertion sequence, never reused
          batch    INTEGER NOT NULL,     -- ingest batch (one transaction) that wrote it
          task     INTEGER NOT NULL,
          label    INTEGER NOT NULL,
          ord      INTEGER NOT NULL,     -- dense ordinal within label: 0..count-1
          dtype    INTEGER NOT NULL,     -- 0 = uint8, 1 = float32 (little-endian)
          shape    TEXT,                 -- '28,28'; NULL means 1-D
          features BLOB NOT NULL,
          logits   BLOB                  -- float32 (little-endian), DER++
        );
        CREATE UNIQUE INDEX samples_by_class ON samples(label, ord);
        CREATE TABLE sample_classes (
          label INTEGER PRIMARY KEY,
          count INTEGER NOT NULL,
          bytes INTEGER NOT NULL         -- sum of features + logits blob lengths
        );
        CREATE TABLE store_meta (
          key   TEXT PRIMARY KEY,
          value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO store_meta (key, value) VALUES ('next_id', 1), ('next_batch', 1);
      `);
    },
  },
  {
    version: 2,
    name: 'create arrivals',
    up(db: SqliteDatabase): void {
      // A live device's samples as they arrive (ArrivalLog), until a round has taken them in; held-out ones stay.
      db.exec(`
        CREATE TABLE arrivals (
          id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival sequence, never reused
          label    INTEGER NOT NULL,
          dtype    INTEGER NOT NULL,     -- 0 = uint8, 1 = float32 (little-endian)
          shape    TEXT,
          features BLOB NOT NULL,
          held_out INTEGER NOT NULL DEFAULT 0,
          source   TEXT                  -- where it came from (an inbox file), for messages
        );
      `);
    },
  },
  {
    version: 3,
    name: 'samples keyed by slot (ord, label) in the rowid',
    up(db: SqliteDatabase): void {
      // "Sample ord of class label" becomes one rowid lookup (slot = ord * 2^24 + label), as cheap as
      // SQLite gets, and an insert writes one B-tree instead of the table and samples_by_class. Ordinal
      // first: while classes grow together an insert appends to the B-tree (no half-full page splits).
      db.exec(`
        CREATE TABLE samples_v3 (
          slot     INTEGER PRIMARY KEY,  -- ord * 2^24 + label
          id       INTEGER NOT NULL,     -- insertion sequence, never reused
          batch    INTEGER NOT NULL,     -- ingest batch (one transaction) that wrote it
          task     INTEGER NOT NULL,
          label    INTEGER NOT NULL,
          ord      INTEGER NOT NULL,     -- dense ordinal within label: 0..count-1
          dtype    INTEGER NOT NULL,     -- 0 = uint8, 1 = float32 (little-endian)
          shape    TEXT,                 -- '28,28'; NULL means 1-D
          features BLOB NOT NULL,
          logits   BLOB                  -- float32 (little-endian), DER++
        );
        INSERT INTO samples_v3 (slot, id, batch, task, label, ord, dtype, shape, features, logits)
          SELECT ord * 16777216 + label, id, batch, task, label, ord, dtype, shape, features, logits FROM samples ORDER BY ord, label;
        DROP TABLE samples;
        ALTER TABLE samples_v3 RENAME TO samples;
      `);
    },
  },
  {
    version: 4,
    name: 'samples: label and ord only in the slot, dtype and shape in sample_formats',
    up(db: SqliteDatabase): void {
      // A row carries what only it knows: label and ord are the slot's, and the (dtype, shape) every
      // sample of a stream shares is one small integer. Four fewer columns to bind and encode per insert.
      // sample_rows shows the rows as schema 3 had them, for people reading the file.
      db.exec(`
        CREATE TABLE sample_formats (
          format INTEGER PRIMARY KEY,
          dtype  INTEGER NOT NULL,      -- 0 = uint8, 1 = float32 (little-endian)
          shape  TEXT NOT NULL,         -- '28,28'; '' means 1-D
          UNIQUE (dtype, shape)
        );
        INSERT INTO sample_formats (dtype, shape) SELECT DISTINCT dtype, ifnull(shape, '') FROM samples ORDER BY 1, 2;
        CREATE TABLE samples_v4 (
          slot     INTEGER PRIMARY KEY,  -- ord * 2^24 + label: ord is the dense ordinal within label
          id       INTEGER NOT NULL,     -- insertion sequence, never reused
          batch    INTEGER NOT NULL,     -- ingest batch (one transaction) that wrote it
          task     INTEGER NOT NULL,
          format   INTEGER NOT NULL,     -- sample_formats.format
          features BLOB NOT NULL,
          logits   BLOB                  -- float32 (little-endian), DER++
        );
        INSERT INTO samples_v4 (slot, id, batch, task, format, features, logits)
          SELECT s.slot, s.id, s.batch, s.task, f.format, s.features, s.logits
          FROM samples s JOIN sample_formats f ON f.dtype = s.dtype AND f.shape = ifnull(s.shape, '') ORDER BY s.slot;
        DROP TABLE samples;
        ALTER TABLE samples_v4 RENAME TO samples;
        CREATE VIEW sample_rows AS
          SELECT s.slot, s.id, s.batch, s.task, s.slot % 16777216 AS label, s.slot / 16777216 AS ord,
                 f.dtype, nullif(f.shape, '') AS shape, s.features, s.logits
          FROM samples s JOIN sample_formats f USING (format);
      `);
    },
  },
  {
    version: 5,
    name: 'create arrival_batches',
    up(db: SqliteDatabase): void {
      // Keys of batches taken into the arrival log (an inbox file: its name and a digest of its bytes),
      // committed with the batch, so a batch offered again (its file was still there after a crash
      // between the commit and the removal) is recognised and not taken in twice.
      db.exec(`
        CREATE TABLE arrival_batches (
          key      TEXT PRIMARY KEY,
          samples  INTEGER NOT NULL,
          taken_at INTEGER NOT NULL     -- ms since the epoch; keys older than the log keeps are dropped
        ) WITHOUT ROWID;
        CREATE INDEX arrival_batches_by_time ON arrival_batches (taken_at);
      `);
    },
  },
]);

/** The rowid of sample `ord` of class `label` (since schema 3; labels below 2^24). */
export function sampleSlot(label: number, ord: number): number {
  return ord * 16777216 + label;
}

/** The class label of a slot (`sampleSlot`'s inverse, with `slotOrd`). */
export function slotLabel(slot: number): number {
  return slot % 16777216;
}

/** The dense ordinal within its class of a slot. */
export function slotOrd(slot: number): number {
  return Math.floor(slot / 16777216);
}

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

export function readUserVersion(db: SqliteDatabase): number {
  return Number(db.pragma('user_version', { simple: true }));
}

/**
 * Brings `db` up to the newest version in `migrations`. Applies each pending
 * migration in order, each in its own transaction; stops at the first that
 * throws and reports it in `failed` instead of throwing half-way.
 */
export function migrate(db: SqliteDatabase, migrations: readonly Migration[]): MigrationResult {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1..n without gaps (found ${m.version} at ${i + 1})`);
  });
  const from = readUserVersion(db);
  const result: MigrationResult = { from, to: from, applied: [] };
  for (const m of sorted) {
    if (m.version <= from) continue;
    try {
      db.transaction(() => {
        m.up(db);
        // PRAGMA takes no bound parameters; version is a checked integer.
        db.pragma(`user_version = ${m.version}`);
      })();
    } catch (error) {
      result.failed = { version: m.version, name: m.name, error };
      return result;
    }
    result.applied.push({ version: m.version, name: m.name });
    result.to = m.version;
  }
  return result;
}
