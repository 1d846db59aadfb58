/**
 * The (dtype, shape) pairs a sample store's rows share (schema 4's
 * `sample_formats`), by their small integer: a stream's samples all have one
 * or a few, so a row stores the integer instead of both.
 */
import { StrataError } from '../common/strata-error.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';

/** A stored format, ready to decode rows with. */
export interface SampleFormat {
  readonly format: number;
  /** 0 = uint8, 1 = float32. */
  readonly dtype: number;
  /** The stored shape text ('' for 1-D). */
  readonly shapeText: string;
  /** The parsed shape; null for 1-D (the features' length). */
  readonly shape: readonly number[] | null;
}

export class SampleFormats {
  readonly #file: string;
  readonly #all: SqliteStatement;
  readonly #insert: SqliteStatement;
  #byId = new Map<number, SampleFormat>();
  #byKey = new Map<string, SampleFormat>();
  /** The last format asked for by `idOf`: a batch's samples share theirs (and its interned shape text). */
  #last: SampleFormat | undefined;

  constructor(db: SqliteDatabase, file: string) {
    this.#file = file;
    this.#all = db.prepare('SELECT format, dtype, shape FROM sample_formats').raw();
    this.#insert = db.prepare('INSERT INTO sample_formats (dtype, shape) VALUES (?, ?) RETURNING format').pluck();
    this.reload();
  }

  /** Reads the table again: after a rolled-back ingest (whose new formats are gone) or when a reader meets a format written since. */
  reload(): void {
    this.#byId = new Map();
    this.#byKey = new Map();
    this.#last = undefined;
    for (const [format, dtype, shapeText] of this.#all.all() as Array<[number, number, string]>) this.#remember(format, dtype, shapeText);
  }

  /** The format of (dtype, shape text), inserting it (inside the caller's transaction) when it is new. */
  idOf(dtype: number, shapeText: string | null): number {
    const text = shapeText ?? '';
    const last = this.#last;
    if (last !== undefined && last.dtype === dtype && last.shapeText === text) return last.format;
    let f = this.#byKey.get(`${dtype}:${text}`);
    if (f === undefined) f = this.#remember(Number(this.#insert.get(dtype, text)), dtype, text);
    this.#last = f;
    return f.format;
  }

  /** The stored format `format` (read again once if this connection has not seen it yet). */
  get(format: number): SampleFormat {
    let f = this.#byId.get(format);
    if (f === undefined) {
      this.reload();
      f = this.#byId.get(format);
      if (f === undefined) throw new StrataError('STRATA_ERR_STORE_CORRUPT', `${this.#file}: a sample refers to format ${format}, which the store does not hold`, { file: this.#file });
    }
    return f;
  }

  #remember(format: number, dtype: number, shapeText: string): SampleFormat {
    const f: SampleFormat = { format, dtype, shapeText, shape: shapeText === '' ? null : Object.freeze(shapeText.split(',').map(Number)) };
    this.#byId.set(format, f);
    this.#byKey.set(`${dtype}:${shapeText}`, f);
    return f;
  }
}
