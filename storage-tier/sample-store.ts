/**
 * CarM's storage tier: every past stream sample of one device, in one SQLite
 * file, with "a random stored sample of class c" as a single indexed lookup.
 * One writer per file (the device's agent); any number of read-only
 * connections (the swap worker's) alongside it, thanks to WAL.
 */
import { StrataError } from '../common/strata-error.js';
import type { MigrationResult } from './migrations.js';
import { sampleSlot, sampleStoreMigrations } from './migrations.js';
import { SampleFormats } from './sample-formats.js';
import { decodeSampleRow, encodeSample, SAMPLE_COLUMNS, type EncodedSample, type SampleInput, type StoredSample } from './sample-codec.js';
import { compileSampleStoreOptions, type CompiledSampleStoreOptions, type SampleStoreOptions } from './sample-store-options.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';
import { SAMPLE_STORE_KIND, classify, openStoreFile, wrapSqliteError } from './store-file.js';

export type SampleStoreState = 'open' | 'closed';

const INSERT_SAMPLES = 'INSERT INTO samples (slot, id, batch, task, format, features, logits) VALUES';
const SAMPLE_ROW = '(?, ?, ?, ?, ?, ?, ?)';
const SAMPLE_FIELDS = 7;
/** Rows per multi-row INSERT (112 parameters, well under SQLite's limit). */
const INSERT_ROWS = 16;

export interface IngestResult {
  /** Batch number written (one transaction), or null when nothing was written. */
  batch: number | null;
  /** Rows written (a row may be evicted again within the same batch). */
  inserted: number;
  /** Rows removed by the capacity budget. */
  evicted: number;
  /** Samples stored after the batch. */
  total: number;
}

export interface StoreBytes {
  /** `page_count * page_size`: the database as SQLite sees it (WAL content included). */
  fileBytes: number;
  /** Sum of the stored feature and logits BLOB lengths. */
  payloadBytes: number;
}

interface Statements {
  insert: SqliteStatement;
  /** INSERT of INSERT_ROWS rows in one statement. */
  insertMany: SqliteStatement;
  evict: SqliteStatement;
  move: SqliteStatement;
  upsertClass: SqliteStatement;
  deleteClass: SqliteStatement;
  setMeta: SqliteStatement;
  fetchAt: SqliteStatement;
  fetchRandom: SqliteStatement;
  classes: SqliteStatement;
}

interface IngestPlan {
  counts: Map<number, number>;
  bytes: Map<number, number>;
  total: number;
  nextId: number;
  evicted: number;
}

export class SampleStore {
  readonly file: string;
  readonly options: CompiledSampleStoreOptions;
  /** What opening did to the schema. */
  readonly migration: MigrationResult;
  #db: SqliteDatabase;
  #ownsConnection: boolean;
  #state: SampleStoreState = 'open';
  #stmt: Statements;
  #formats: SampleFormats;
  readonly #formatOf = (format: number) => this.#formats.get(format);
  // The writer's view; authoritative because it is the only writer.
  #counts = new Map<number, number>();
  #bytes = new Map<number, number>();
  #total = 0;
  #nextId = 1;
  #nextBatch = 1;
  #ingestTx: (encoded: EncodedSample[], batch: number, plan: IngestPlan) => void;
  #fetchManyTx: (labels: readonly number[], rng: () => number) => Array<StoredSample | null>;

  /** Opens (creating and migrating when read-write) the store at `target`: a path or an open connection. */
  static open(target: string | SqliteDatabase, options: SampleStoreOptions = {}): SampleStore {
    return new SampleStore(target, compileSampleStoreOptions(options));
  }

  /** A read-only connection to an existing store file, e.g. for the swap worker's thread. */
  static openReadOnly(file: string, options: Omit<SampleStoreOptions, 'readonly' | 'capacity'> = {}): SampleStore {
    return SampleStore.open(file, { ...options, readonly: true });
  }

  private constructor(target: string | SqliteDatabase, options: CompiledSampleStoreOptions) {
    this.options = options;
    const opened = openStoreFile(target, sampleStoreMigrations, { ...options, kind: SAMPLE_STORE_KIND });
    this.#db = opened.db;
    this.file = opened.file;
    this.#ownsConnection = opened.ownsConnection;
    this.migration = opened.migration;
    const db = this.#db;
    try {
      this.#stmt = {
        insert: db.prepare(`${INSERT_SAMPLES} ${SAMPLE_ROW}`),
        insertMany: db.prepare(`${INSERT_SAMPLES} ${Array.from({ length: INSERT_ROWS }, () => SAMPLE_ROW).join(', ')}`),
        evict: db.prepare('DELETE FROM samples WHERE slot = ? RETURNING length(features) + ifnull(length(logits), 0)').pluck(),
        move: db.prepare('UPDATE samples SET slot = ? WHERE slot = ?'),
        upsertClass: db.prepare('INSERT INTO sample_classes (label, count, bytes) VALUES (?, ?, ?) ON CONFLICT (label) DO UPDATE SET count = excluded.count, bytes = excluded.bytes'),
        deleteClass: db.prepare('DELETE FROM sample_classes WHERE label = ?'),
        setMeta: db.prepare('UPDATE store_meta SET value = ? WHERE key = ?'),
        fetchAt: db.prepare(`SELECT ${SAMPLE_COLUMNS} FROM samples WHERE slot = ?`).raw(),
        // One statement, so a reader's count and row come from one snapshot
        // even while the writer evicts.
        fetchRandom: db.prepare(
          `SELECT ${SAMPLE_COLUMNS} FROM samples WHERE slot = ? + 16777216 * (SELECT min(count - 1, CAST(? * count AS INTEGER)) FROM sample_classes WHERE label = ?)`,
        ).raw(),
        classes: db.prepare('SELECT label, count, bytes FROM sample_classes ORDER BY label').raw(),
      };
      this.#formats = new SampleFormats(db, this.file);
      this.#loadState();
    } catch (err) {
      if (this.#ownsConnection) this.#db.close();
      throw err instanceof StrataError ? err : classify(err, this.file);
    }
    this.#ingestTx = db.transaction((encoded: EncodedSample[], batch: number, plan: IngestPlan) => this.#writeBatch(encoded, batch, plan));
    this.#fetchManyTx = db.transaction((labels: readonly number[], rng: () => number) => labels.map((l) => this.#fetchOne(l, rng)));
  }

  get state(): SampleStoreState {
    return this.#state;
  }

  get readonly(): boolean {
    return this.options.readonly;
  }

  /**
   * Stores a batch in one transaction: after a crash the store holds all of
   * it or none of it. Every sample is validated before anything is written.
   */
  ingest(samples: readonly SampleInput[]): IngestResult {
    this.#assertOpen();
    if (this.options.readonly) {
      throw new StrataError('STRATA_ERR_STORE_READONLY', `${this.file}: store is open read-only`, { file: this.file });
    }
    const encoded = samples.map((s, i) => encodeSample(s, i));
    if (this.options.capacity === 'none' || encoded.length === 0) {
      return { batch: null, inserted: 0, evicted: 0, total: this.#total };
    }
    const plan: IngestPlan = { counts: new Map(this.#counts), bytes: new Map(this.#bytes), total: this.#total, nextId: this.#nextId, evicted: 0 };
    const batch = this.#nextBatch;
    try {
      this.#ingestTx(encoded, batch, plan);
    } catch (err) {
      // Formats first written by the rolled-back batch are gone again.
      this.#formats.reload();
      throw wrapSqliteError(err, this.file, 'ingest');
    }
    // Committed: only now does the in-memory view move on.
    this.#counts = plan.counts;
    this.#bytes = plan.bytes;
    this.#total = plan.total;
    this.#nextId = plan.nextId;
    this.#nextBatch = batch + 1;
    return { batch, inserted: encoded.length, evicted: plan.evicted, total: plan.total };
  }

  /** A uniformly random stored sample of class `label`, or null when none is stored. */
  fetchRandomOfClass(label: number, rng: () => number = this.options.rng): StoredSample | null {
    this.#assertOpen();
    try {
      return this.#fetchOne(label, rng);
    } catch (err) {
      throw wrapSqliteError(err, this.file, 'fetch');
    }
  }

  /** One random sample per entry of `labels` (null where a class has none), read in one transaction. */
  fetchManyRandomOfClasses(labels: readonly number[], rng: () => number = this.options.rng): Array<StoredSample | null> {
    this.#assertOpen();
    try {
      return this.#fetchManyTx(labels, rng);
    } catch (err) {
      throw wrapSqliteError(err, this.file, 'fetch');
    }
  }

  /** Samples stored. */
  count(): number {
    this.#assertOpen();
    if (!this.options.readonly) return this.#total;
    let total = 0;
    for (const n of this.#readClasses().counts.values()) total += n;
    return total;
  }

  /** Samples stored per class label (classes with none are absent), in label order. */
  countsByClass(): Map<number, number> {
    this.#assertOpen();
    if (!this.options.readonly) return new Map([...this.#counts].sort((a, b) => a[0] - b[0]));
    return this.#readClasses().counts;
  }

  bytesUsed(): StoreBytes {
    this.#assertOpen();
    const pages = Number(this.#db.pragma('page_count', { simple: true }));
    const pageSize = Number(this.#db.pragma('page_size', { simple: true }));
    const bytes = this.options.readonly ? this.#readClasses().bytes : this.#bytes;
    let payloadBytes = 0;
    for (const b of bytes.values()) payloadBytes += b;
    return { fileBytes: pages * pageSize, payloadBytes };
  }

  /** Closes the connection if this store opened it; a handed-in connection stays its owner's. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#ownsConnection) this.#db.close();
  }

  #fetchOne(label: number, rng: () => number): StoredSample | null {
    if (this.options.readonly) {
      const row = this.#stmt.fetchRandom.get(label, rng(), label) as unknown[] | undefined;
      return row === undefined ? null : decodeSampleRow(row, this.#formatOf);
    }
    const n = this.#counts.get(label) ?? 0;
    if (n === 0) return null;
    const ord = Math.min(n - 1, Math.floor(rng() * n));
    const row = this.#stmt.fetchAt.get(sampleSlot(label, ord)) as unknown[] | undefined;
    return row === undefined ? null : decodeSampleRow(row, this.#formatOf);
  }

  #writeBatch(encoded: EncodedSample[], batch: number, plan: IngestPlan): void {
    const { insert, insertMany } = this.#stmt;
    const touched = new Set<number>();
    const capacity = this.options.capacity;
    // Without evictions in this batch, rows go INSERT_ROWS to a statement: one call and one step for
    // them all (the per-call cost is most of what a small row costs), in the same order, with the same values.
    let i = 0;
    if (typeof capacity !== 'number' || plan.total + encoded.length <= capacity) {
      const params: unknown[] = new Array(INSERT_ROWS * SAMPLE_FIELDS);
      for (; i + INSERT_ROWS <= encoded.length; i += INSERT_ROWS) {
        for (let k = 0; k < INSERT_ROWS; k++) this.#rowParams(encoded[i + k]!, batch, plan, params, k * SAMPLE_FIELDS, touched);
        insertMany.run(params);
      }
    }
    const one: unknown[] = new Array(SAMPLE_FIELDS);
    for (; i < encoded.length; i++) {
      this.#rowParams(encoded[i]!, batch, plan, one, 0, touched);
      insert.run(one);
      while (typeof capacity === 'number' && plan.total > capacity) touched.add(this.#evictOne(plan));
    }
    for (const label of touched) {
      const n = plan.counts.get(label) ?? 0;
      if (n > 0) {
        this.#stmt.upsertClass.run(label, n, plan.bytes.get(label) ?? 0);
      } else {
        this.#stmt.deleteClass.run(label);
        plan.counts.delete(label);
        plan.bytes.delete(label);
      }
    }
    this.#stmt.setMeta.run(plan.nextId, 'next_id');
    this.#stmt.setMeta.run(batch + 1, 'next_batch');
  }

  /** The row of `s` (taking the next id and its class's next ordinal) into `params` at `at`. */
  #rowParams(s: EncodedSample, batch: number, plan: IngestPlan, params: unknown[], at: number, touched: Set<number>): void {
    const ord = plan.counts.get(s.label) ?? 0;
    params[at] = sampleSlot(s.label, ord);
    params[at + 1] = plan.nextId++;
    params[at + 2] = batch;
    params[at + 3] = s.task;
    params[at + 4] = this.#formats.idOf(s.dtype, s.shape);
    params[at + 5] = s.features;
    params[at + 6] = s.logits;
    plan.counts.set(s.label, ord + 1);
    plan.bytes.set(s.label, (plan.bytes.get(s.label) ?? 0) + s.bytes);
    plan.total++;
    touched.add(s.label);
  }

  /** Evicts a random sample of the class with the most stored samples (ties broken at random). */
  #evictOne(plan: IngestPlan): number {
    const rng = this.options.rng;
    let label = -1;
    let max = 0;
    let ties = 0;
    for (const [l, n] of plan.counts) {
      if (n > max) {
        label = l;
        max = n;
        ties = 1;
      } else if (n === max && n > 0 && rng() * ++ties < 1) {
        label = l;
      }
    }
    const victim = Math.min(max - 1, Math.floor(rng() * max));
    const freed = Number(this.#stmt.evict.get(sampleSlot(label, victim)));
    // Keep ordinals dense: the class's last sample takes the victim's place.
    if (victim !== max - 1) this.#stmt.move.run(sampleSlot(label, victim), sampleSlot(label, max - 1));
    plan.counts.set(label, max - 1);
    plan.bytes.set(label, (plan.bytes.get(label) ?? 0) - freed);
    plan.total--;
    plan.evicted++;
    return label;
  }

  #loadState(): void {
    const { counts, bytes } = this.#readClasses();
    this.#counts = counts;
    this.#bytes = bytes;
    this.#total = [...counts.values()].reduce((a, b) => a + b, 0);
    const meta = new Map(
      (this.#db.prepare('SELECT key, value FROM store_meta').raw().all() as Array<[string, number]>).map(([k, v]) => [k, Number(v)]),
    );
    this.#nextId = meta.get('next_id') ?? 1;
    this.#nextBatch = meta.get('next_batch') ?? 1;
  }

  #readClasses(): { counts: Map<number, number>; bytes: Map<number, number> } {
    const counts = new Map<number, number>();
    const bytes = new Map<number, number>();
    for (const [label, count, b] of this.#stmt.classes.all() as Array<[number, number, number]>) {
      counts.set(label, count);
      bytes.set(label, b);
    }
    return { counts, bytes };
  }

  #assertOpen(): void {
    if (this.#state !== 'open') {
      throw new StrataError('STRATA_ERR_STORE_CLOSED', `${this.file}: store is closed`, { file: this.file });
    }
  }
}
