/**
 * A live device's samples as they arrive, in its store file (table
 * `arrivals`): `append` commits a batch in one transaction with
 * `synchronous = FULL`, so once it returns a power cut loses none of it.
 * A round reads what arrived after the position it last took; held-out
 * samples (Miro's validation) stay for good, the rest are dropped once a
 * round has taken them into the memory hierarchy.
 */
import { StrataError } from '../common/strata-error.js';
import { sampleStoreMigrations } from './migrations.js';
import { DTYPE_CODE, encodeSample, type Features } from './sample-codec.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';
import { SAMPLE_STORE_KIND, classify, openStoreFile } from './store-file.js';

/** One labelled sample arriving at a device. */
export interface ArrivingSample {
  label: number;
  features: Features;
  /** Where it came from (a file name), kept for messages. */
  source?: string;
}

/** Arrived samples read back: features row-major, in arrival order. */
export interface ArrivedSamples {
  ids: number[];
  labels: Uint8Array;
  features: Uint8Array | Float32Array;
  count: number;
}

export interface AppendResult {
  /** The newest arrival id (0: none yet). */
  lastId: number;
  /** Samples this call added (0 for a batch whose key the log already held). */
  added: number;
}

/** How long the log remembers the key of a batch it took in (ArrivalLog.append). */
export const BATCH_KEY_RETENTION_MS = 30 * 24 * 3600 * 1000;

export class ArrivalLog {
  readonly file: string;
  readonly featureSize: number;
  readonly featureType: 'uint8' | 'float32';
  readonly #db: SqliteDatabase;
  readonly #insert: SqliteStatement;
  readonly #appendTx: (rows: readonly ArrivingSample[], key: string | undefined) => AppendResult;
  #closed = false;

  /** Opens (creating or migrating) the store file's arrival log for samples of `featureSize` values of `featureType`. */
  static open(file: string, options: { featureSize: number; featureType: 'uint8' | 'float32' }): ArrivalLog {
    return new ArrivalLog(file, options);
  }

  private constructor(file: string, options: { featureSize: number; featureType: 'uint8' | 'float32' }) {
    const opened = openStoreFile(file, sampleStoreMigrations, {
      kind: SAMPLE_STORE_KIND, readonly: false, synchronous: 'FULL', integrityCheck: 'quick', busyTimeoutMs: 10_000, cacheSizeKiB: 2048, mmapSizeBytes: 0,
    });
    this.#db = opened.db;
    this.file = opened.file;
    this.featureSize = options.featureSize;
    this.featureType = options.featureType;
    this.#db.pragma('synchronous = FULL');
    this.#insert = this.#db.prepare('INSERT INTO arrivals (label, dtype, shape, features, source) VALUES (?, ?, NULL, ?, ?)');
    const taken = this.#db.prepare('SELECT 1 FROM arrival_batches WHERE key = ?').pluck();
    const remember = this.#db.prepare('INSERT INTO arrival_batches (key, samples, taken_at) VALUES (?, ?, ?)');
    const forget = this.#db.prepare('DELETE FROM arrival_batches WHERE taken_at < ?');
    this.#appendTx = this.#db.transaction((rows: readonly ArrivingSample[], key: string | undefined) => {
      if (key !== undefined) {
        if (taken.get(key) !== undefined) return { lastId: this.lastId(), added: 0 };
        const now = Date.now();
        forget.run(now - BATCH_KEY_RETENTION_MS);
        remember.run(key, rows.length, now);
      }
      let last = rows.length === 0 ? this.lastId() : 0;
      rows.forEach((r, i) => {
        const e = encodeSample({ task: 0, label: r.label, features: r.features }, i);
        last = Number(this.#insert.run(r.label, e.dtype, e.features, r.source ?? null).lastInsertRowid);
      });
      return { lastId: last, added: rows.length };
    });
  }

  /**
   * Commits `samples` (all or none); returns the newest arrival id and how
   * many samples it added. Each
   * must hold `featureSize` values of the log's type. With a `key` the
   * batch is taken in at most once: the key is committed with it, and a
   * batch offered again under a key the log holds (kept 30 days) adds
   * nothing (an inbox file still there after a crash between its commit
   * and its removal).
   */
  append(samples: readonly ArrivingSample[], key?: string): AppendResult {
    this.#assertOpen();
    samples.forEach((s, i) => {
      const type = s.features instanceof Uint8Array ? 'uint8' : s.features instanceof Float32Array ? 'float32' : 'other';
      if (type !== this.featureType || s.features.length !== this.featureSize || !Number.isSafeInteger(s.label) || s.label < 0 || s.label > 255) {
        throw new StrataError('STRATA_ERR_BAD_SAMPLE', `sample ${i}${s.source ? ` (${s.source})` : ''}: expected label 0..255 and ${this.featureSize} ${this.featureType} features, got label ${s.label} and ${s.features.length} ${type}`, {
          index: i, ...(s.source ? { file: s.source } : {}),
        });
      }
    });
    if (samples.length === 0 && key === undefined) return { lastId: this.lastId(), added: 0 };
    try {
      return this.#appendTx(samples, key);
    } catch (err) {
      throw err instanceof StrataError ? err : classify(err, this.file);
    }
  }

  /** The newest arrival id (0: none yet). */
  lastId(): number {
    this.#assertOpen();
    return Number(this.#db.prepare('SELECT ifnull(max(id), 0) FROM arrivals').pluck().get());
  }

  /** Samples that arrived after `afterId` and are not held out, and the held-out ones, each in arrival order. */
  read(afterId: number): { fresh: ArrivedSamples; heldOut: ArrivedSamples } {
    this.#assertOpen();
    const rows = this.#db.prepare('SELECT id, label, dtype, features, held_out FROM arrivals WHERE held_out = 1 OR id > ? ORDER BY id').raw().all(afterId) as [number, number, number, Uint8Array, number][];
    return { fresh: this.#collect(rows.filter((r) => r[4] === 0)), heldOut: this.#collect(rows.filter((r) => r[4] === 1)) };
  }

  /** Marks arrivals as held out for good (never trained on, never dropped). */
  holdOut(ids: readonly number[]): void {
    this.#assertOpen();
    const mark = this.#db.prepare('UPDATE arrivals SET held_out = 1 WHERE id = ?');
    this.#db.transaction(() => { for (const id of ids) mark.run(id); })();
  }

  /** Drops arrivals up to `id` that are not held out (a round has taken them in). */
  dropThrough(id: number): void {
    this.#assertOpen();
    this.#db.prepare('DELETE FROM arrivals WHERE id <= ? AND held_out = 0').run(id);
  }

  /** Arrivals still in the log (taken or not), held-out ones included. */
  count(): number {
    this.#assertOpen();
    return Number(this.#db.prepare('SELECT count(*) FROM arrivals').pluck().get());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #collect(rows: readonly [number, number, number, Uint8Array, number][]): ArrivedSamples {
    const n = rows.length;
    const f = this.featureSize;
    const features = this.featureType === 'uint8' ? new Uint8Array(n * f) : new Float32Array(n * f);
    const labels = new Uint8Array(n);
    const ids: number[] = [];
    rows.forEach(([id, label, dtype, blob], i) => {
      if (dtype !== DTYPE_CODE[this.featureType]) throw new StrataError('STRATA_ERR_STORE_CORRUPT', `${this.file}: arrival ${id} holds ${dtype === 0 ? 'uint8' : 'float32'} features, not ${this.featureType}`, { file: this.file });
      const values = this.featureType === 'uint8' ? new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength) : new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
      if (values.length !== f) throw new StrataError('STRATA_ERR_STORE_CORRUPT', `${this.file}: arrival ${id} holds ${values.length} features, not ${f}`, { file: this.file });
      features.set(values, i * f);
      labels[i] = label;
      ids.push(id);
    });
    return { ids, labels, features, count: n };
  }

  #assertOpen(): void {
    if (this.#closed) throw new StrataError('STRATA_ERR_STORE_CLOSED', `${this.file}: arrival log is closed`, { file: this.file });
  }
}
