/**
 * The narrow slice of better-sqlite3 the storage tier uses, as structural
 * types, so tests (and other rooms) can hand in any `new Database(...)`,
 * including `':memory:'`.
 */
import Database from 'better-sqlite3';

export interface SqliteRunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface SqliteStatement {
  run(...params: unknown[]): SqliteRunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  /** Rows as arrays (column order) instead of objects: cheaper on hot paths. */
  raw(toggleState?: boolean): this;
  pluck(toggleState?: boolean): this;
}

export interface SqliteDatabase {
  readonly name: string;
  readonly open: boolean;
  readonly memory: boolean;
  readonly readonly: boolean;
  readonly inTransaction: boolean;
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** Wraps `fn` in BEGIN/COMMIT; rolls back when `fn` throws. */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): unknown;
}

export interface OpenSqliteOptions {
  readonly: boolean;
  /** How long a statement waits on a lock held by another connection. */
  busyTimeoutMs: number;
}

/** Opens a connection with better-sqlite3. A read-only open never creates the file. */
export function openSqlite(file: string, options: OpenSqliteOptions): SqliteDatabase {
  return new Database(file, {
    readonly: options.readonly,
    fileMustExist: options.readonly,
    timeout: options.busyTimeoutMs,
  });
}

/** The SQLite error code (`SQLITE_CORRUPT`, ...) of a thrown better-sqlite3 error, if any. */
export function sqliteErrorCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_')) {
    return err.code;
  }
  return undefined;
}
