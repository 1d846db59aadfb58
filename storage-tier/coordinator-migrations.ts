/**
 * Schema of the coordinator store (rounds, global model versions, client
 * registry, the update log). Separate from the sample store's migrations:
 * a coordinator database is its own file.
 */
import type { Migration } from './migrations.js';
import type { SqliteDatabase } from './sqlite.js';

export const coordinatorStoreMigrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'create coordinator_meta, models, rounds, clients, updates, rejections',
    up(db: SqliteDatabase): void {
      db.exec(`
        CREATE TABLE coordinator_meta (
          key   TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) WITHOUT ROWID;
        -- One row per global model version; version 0 is the initial model.
        CREATE TABLE models (
          version        INTEGER PRIMARY KEY,
          round_id       INTEGER NOT NULL,       -- round that produced it (0: initial)
          layout_hash    TEXT NOT NULL,
          weights        BLOB NOT NULL,          -- float32 little-endian
          strategy_state BLOB,                   -- server optimizer state (FedAdam m, v, ...)
          applied        INTEGER NOT NULL,       -- updates folded into it
          accuracy       REAL,
          loss           REAL,
          created_at     INTEGER NOT NULL
        );
        CREATE TABLE rounds (
          round_id      INTEGER PRIMARY KEY,
          base_version  INTEGER NOT NULL,
          status        TEXT NOT NULL CHECK (status IN ('open', 'completed')),
          started_at    INTEGER NOT NULL,
          closed_at     INTEGER,
          new_version   INTEGER,
          selected      INTEGER NOT NULL DEFAULT 0,
          accepted      INTEGER NOT NULL DEFAULT 0,
          rejected      INTEGER NOT NULL DEFAULT 0,
          dropped       INTEGER NOT NULL DEFAULT 0,
          resumed       INTEGER NOT NULL DEFAULT 0  -- restarts that resumed it
        );
        CREATE UNIQUE INDEX rounds_one_open ON rounds(status) WHERE status = 'open';
        CREATE TABLE clients (
          agent_id     TEXT PRIMARY KEY,
          profile      TEXT NOT NULL,
          first_seen   INTEGER NOT NULL,
          last_seen    INTEGER NOT NULL,
          rounds_done  INTEGER NOT NULL DEFAULT 0,
          accepted     INTEGER NOT NULL DEFAULT 0,
          rejected     INTEGER NOT NULL DEFAULT 0,
          dropped      INTEGER NOT NULL DEFAULT 0,
          reliability  REAL NOT NULL DEFAULT 1,
          mean_seconds REAL                        -- mean assignment-to-update time
        ) WITHOUT ROWID;
        -- The update log. payload holds the accepted delta (float32) while its
        -- round is open; it is written in the same transaction as the row, and
        -- cleared in the transaction that applies the round.
        CREATE TABLE updates (
          seq           INTEGER PRIMARY KEY,
          round_id      INTEGER NOT NULL,          -- round (or FedBuff buffer) it was accepted into
          assigned_round INTEGER NOT NULL,         -- round of the assignment it answers
          agent_id      TEXT NOT NULL,
          model_version INTEGER NOT NULL,          -- model it was trained from
          num_samples   INTEGER NOT NULL,
          weight        REAL NOT NULL,             -- aggregation weight
          scale         REAL NOT NULL,             -- clipping factor
          norm          REAL NOT NULL,
          bytes         INTEGER NOT NULL,
          status        TEXT NOT NULL CHECK (status IN ('accepted', 'applied')),
          applied_version INTEGER,
          received_at   INTEGER NOT NULL,
          payload       BLOB
        );
        CREATE UNIQUE INDEX updates_once ON updates(assigned_round, agent_id);
        CREATE INDEX updates_by_round ON updates(round_id, status);
        CREATE TABLE rejections (
          seq      INTEGER PRIMARY KEY,
          round_id INTEGER,
          agent_id TEXT,
          code     TEXT NOT NULL,
          at       INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 2,
    name: 'spool update payloads: updates.spool_offset, updates.spool_length',
    up(db: SqliteDatabase): void {
      // An accepted update's payload now waits in the round's spool file (update-spool.ts); rows written
      // before keep theirs in payload until their round is applied.
      db.exec(`
        ALTER TABLE updates ADD COLUMN spool_offset INTEGER;
        ALTER TABLE updates ADD COLUMN spool_length INTEGER;
      `);
    },
  },
]);
