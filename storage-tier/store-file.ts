/**
 * Opens a Strata store file: identifies it (`PRAGMA application_id`), checks
 * it (`PRAGMA quick_check`), sets WAL mode and migrates it. Every failure is a
 * coded `StrataError` naming the file; the connection is closed on failure
 * when this module opened it.
 */
import { StrataError } from '../common/strata-error.js';
import { latestVersion, migrate, readUserVersion, type Migration, type MigrationResult } from './migrations.js';
import { openSqlite, sqliteErrorCode, type SqliteDatabase } from './sqlite.js';

/** `PRAGMA application_id` of every Strata store: 'STRA' in ASCII. */
export const STRATA_APPLICATION_ID = 0x53545241;

export type Synchronous = 'NORMAL' | 'FULL';
export type IntegrityCheck = 'quick' | 'off';

/** Which kind of Strata store a file must be: its name for messages and a table only that kind has. */
export interface StoreKind {
  name: string;
  table: string;
}

export const SAMPLE_STORE_KIND: StoreKind = Object.freeze({ name: 'sample store', table: 'samples' });
export const COORDINATOR_STORE_KIND: StoreKind = Object.freeze({ name: 'coordinator database', table: 'coordinator_meta' });
export const JOB_RESULT_STORE_KIND: StoreKind = Object.freeze({ name: 'simulation checkpoint', table: 'job_results' });
const KINDS: readonly StoreKind[] = [SAMPLE_STORE_KIND, COORDINATOR_STORE_KIND, JOB_RESULT_STORE_KIND];

export interface StoreFileOptions {
  /** The kind the file must be (checked before its version: each kind numbers its own). */
  kind: StoreKind;
  /** `PRAGMA page_size` of a new file. Default: SQLite's. */
  pageSize?: number;
  readonly: boolean;
  synchronous: Synchronous;
  integrityCheck: IntegrityCheck;
  busyTimeoutMs: number;
  cacheSizeKiB: number;
  mmapSizeBytes: number;
}

export interface OpenedStoreFile {
  db: SqliteDatabase;
  /** File path (or `:memory:`), for messages. */
  file: string;
  /** True when this module opened the connection (and its owner must close it). */
  ownsConnection: boolean;
  migration: MigrationResult;
}

export function openStoreFile(
  target: string | SqliteDatabase,
  migrations: readonly Migration[],
  options: StoreFileOptions,
): OpenedStoreFile {
  const ownsConnection = typeof target === 'string';
  let db: SqliteDatabase;
  if (typeof target === 'string') {
    try {
      db = openSqlite(target, { readonly: options.readonly, busyTimeoutMs: options.busyTimeoutMs });
    } catch (cause) {
      throw new StrataError('STRATA_ERR_STORE_OPEN', `${target}: cannot open the store file (${messageOf(cause)})`, { file: target }, { cause });
    }
  } else {
    db = target;
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  }
  const file = db.name;
  try {
    const migration = prepare(db, file, migrations, options);
    return { db, file, ownsConnection, migration };
  } catch (err) {
    if (ownsConnection) db.close();
    if (err instanceof StrataError) throw err;
    throw classify(err, file);
  }
}

function prepare(db: SqliteDatabase, file: string, migrations: readonly Migration[], options: StoreFileOptions): MigrationResult {
  // The first read of the header: a text file fails here with SQLITE_NOTADB.
  const applicationId = Number(db.pragma('application_id', { simple: true }));
  const version = readUserVersion(db);
  const objects = Number(db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get());
  const isNew = applicationId === 0 && version === 0 && objects === 0;
  const latest = latestVersion(migrations);

  if (!isNew && applicationId !== STRATA_APPLICATION_ID) {
    throw new StrataError(
      'STRATA_ERR_STORE_NOT_STRATA',
      `${file}: not a Strata store (SQLite application_id ${applicationId}, expected ${STRATA_APPLICATION_ID}, with ${objects} schema objects)`,
      { file, applicationId },
    );
  }
  if (!isNew && version > 0) {
    // Each kind's first migration creates its tables: a migrated file says what it is.
    const has = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?").pluck();
    if (Number(has.get(options.kind.table)) === 0) {
      const actual = KINDS.find((k) => k !== options.kind && Number(has.get(k.table)) > 0);
      throw new StrataError('STRATA_ERR_STORE_WRONG_KIND', `${file}: ${actual === undefined ? 'a Strata store of an unknown kind' : `a Strata ${actual.name}`}, not a ${options.kind.name}`, {
        file, expected: options.kind.name, actual: actual?.name ?? null,
      });
    }
  }
  if (isNew && options.readonly) {
    throw new StrataError('STRATA_ERR_STORE_NOT_STRATA', `${file}: empty file, not a Strata store (a read-only open never creates one)`, { file });
  }
  if (version > latest) {
    throw new StrataError('STRATA_ERR_STORE_TOO_NEW', `${file}: store schema version ${version} is newer than this Strata (${latest})`, { file, version, latest });
  }
  if (options.readonly && version < latest) {
    throw new StrataError('STRATA_ERR_STORE_OUTDATED', `${file}: store schema version ${version} needs migrating to ${latest}; open it read-write first`, { file, version, latest });
  }
  if (!isNew && options.integrityCheck === 'quick') {
    const problems = db.prepare('PRAGMA quick_check(5)').pluck().all().map(String);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new StrataError('STRATA_ERR_STORE_CORRUPT', `${file}: store is corrupt (quick_check: ${problems.join('; ')})`, { file, problems });
    }
  }
  // Only a new file takes a page size (before its first table).
  if (isNew && options.pageSize !== undefined && !db.memory) db.pragma(`page_size = ${options.pageSize}`);
  db.pragma(`cache_size = ${-options.cacheSizeKiB}`);
  db.pragma(`mmap_size = ${options.mmapSizeBytes}`);
  if (options.readonly) return { from: version, to: version, applied: [] };

  // WAL: readers (the swap worker's own connection) never block the writer.
  // synchronous=NORMAL in WAL mode: COMMIT appends the transaction to the WAL
  // (in the OS page cache) before it returns, so killing the process — even
  // with SIGKILL — loses no committed batch; only an OS crash or power cut can
  // lose the last few commits, and never corrupts the file (the WAL's frame
  // checksums drop a torn tail). The store is a replay cache, so that is the
  // right trade for ingest speed; FULL (fsync on every commit) is an option
  // for devices that must survive power loss too.
  const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
  if (mode !== 'wal' && !db.memory) {
    throw new StrataError('STRATA_ERR_STORE_OPEN', `${file}: cannot switch the store to WAL mode (got '${mode}')`, { file, mode });
  }
  db.pragma(`synchronous = ${options.synchronous}`);
  if (isNew || applicationId === 0) db.pragma(`application_id = ${STRATA_APPLICATION_ID}`);

  const result = migrate(db, migrations);
  if (result.failed) {
    const { version: v, name, error } = result.failed;
    throw new StrataError('STRATA_ERR_STORE_MIGRATION', `${file}: migration ${v} (${name}) failed: ${messageOf(error)}`, { file, migration: result }, { cause: error });
  }
  return result;
}

/** Maps a SQLite error met while opening to a coded StrataError. */
export function classify(err: unknown, file: string): StrataError {
  const code = sqliteErrorCode(err);
  if (code === 'SQLITE_NOTADB') {
    return new StrataError('STRATA_ERR_STORE_NOT_STRATA', `${file}: not a Strata store (not an SQLite database)`, { file, sqlite: code }, { cause: err });
  }
  if (code?.startsWith('SQLITE_CORRUPT')) {
    return new StrataError('STRATA_ERR_STORE_CORRUPT', `${file}: store is corrupt (${messageOf(err)})`, { file, sqlite: code }, { cause: err });
  }
  return new StrataError('STRATA_ERR_STORE_OPEN', `${file}: cannot open the store (${messageOf(err)})`, { file, sqlite: code }, { cause: err });
}

/** Maps a SQLite error met during `op` on an open store to a coded StrataError; other errors pass through. */
export function wrapSqliteError(err: unknown, file: string, op: string): unknown {
  if (err instanceof StrataError) return err;
  const code = sqliteErrorCode(err);
  if (code === undefined) return err;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return classify(err, file);
  if (code === 'SQLITE_FULL') return new StrataError('STRATA_ERR_STORE_FULL', `${file}: ${op} failed, disk full`, { file }, { cause: err });
  return new StrataError('STRATA_ERR_STORE_IO', `${file}: ${op} failed (${messageOf(err)})`, { file, sqlite: code }, { cause: err });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
