/**
 * A simulation's checkpoint in its run directory: every client job's result
 * as it arrives (its header as JSON, its update frame as a blob), committed
 * before the round engine sees it, plus a few facts about the run (its id,
 * a fingerprint of its settings, the last round completed). A simulation
 * host killed mid-run and started again on the same directory replays the
 * recorded results through the engine (no client retrains) and carries on
 * live from there, so it ends with the same model as an uninterrupted run.
 */
import type { Migration } from './migrations.js';
import type { SqliteDatabase } from './sqlite.js';
import { JOB_RESULT_STORE_KIND, openStoreFile } from './store-file.js';

const migrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'create job_meta, job_results',
    up(db: SqliteDatabase): void {
      db.exec(`
        CREATE TABLE job_meta (
          key   TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE job_results (
          job_id      INTEGER PRIMARY KEY,     -- the run's job number (assignments in engine order)
          job_key     TEXT NOT NULL UNIQUE,    -- round, client and job number
          round_id    INTEGER NOT NULL,
          client_id   TEXT NOT NULL,
          header      TEXT NOT NULL,           -- JSON: the result without its frame
          frame       BLOB NOT NULL,           -- the update weight frame
          recorded_at INTEGER NOT NULL
        );
      `);
    },
  },
]);

export interface RecordedJobResult {
  jobId: number;
  jobKey: string;
  roundId: number;
  clientId: string;
  header: string;
  frame: Uint8Array;
}

export class JobResultStore {
  readonly file: string;
  readonly #db: SqliteDatabase;

  private constructor(db: SqliteDatabase) {
    this.#db = db;
    this.file = db.name;
  }

  static open(file: string): JobResultStore {
    const opened = openStoreFile(file, migrations, {
      kind: JOB_RESULT_STORE_KIND, pageSize: 65_536, readonly: false, synchronous: 'NORMAL', integrityCheck: 'quick', busyTimeoutMs: 5000, cacheSizeKiB: 4096, mmapSizeBytes: 0,
    });
    return new JobResultStore(opened.db);
  }

  getMeta(key: string): string | undefined {
    const v = this.#db.prepare('SELECT value FROM job_meta WHERE key = ?').pluck().get(key);
    return v === undefined ? undefined : String(v);
  }

  setMeta(key: string, value: string): void {
    this.#db.prepare('INSERT INTO job_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Records a result (a second result for the same job is ignored: the first one counts). */
  record(r: RecordedJobResult): boolean {
    return this.#db.prepare(`INSERT INTO job_results (job_id, job_key, round_id, client_id, header, frame, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT DO NOTHING`).run(r.jobId, r.jobKey, r.roundId, r.clientId, r.header, r.frame, Date.now()).changes === 1;
  }

  /** Every recorded result, by job number. */
  results(): RecordedJobResult[] {
    return (this.#db.prepare('SELECT job_id, job_key, round_id, client_id, header, frame FROM job_results ORDER BY job_id').all() as Record<string, unknown>[]).map((row) => ({
      jobId: Number(row['job_id']), jobKey: String(row['job_key']), roundId: Number(row['round_id']), clientId: String(row['client_id']),
      header: String(row['header']), frame: new Uint8Array(row['frame'] as Buffer),
    }));
  }

  /** Forgets everything (a new run in the same directory). */
  clear(): void {
    this.#db.exec('DELETE FROM job_results; DELETE FROM job_meta;');
  }

  close(): void {
    this.#db.close();
  }
}
