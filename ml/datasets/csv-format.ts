import { existsSync, readFileSync } from 'node:fs';
import { StrataError } from '../../common/strata-error.js';

/**
 * CSV sample files: a header row, a column named `label` holding class ids
 * (integers 0..255), every other column a numeric feature, in the header's
 * order. Fields may be padded with spaces and quoted ("1.5"); there is no
 * missing value: an empty field is an error.
 */
export interface CsvHeader {
  /** Column names as in the header. */
  columns: string[];
  /** Where the `label` column is. */
  labelIndex: number;
  /** Columns other than `label`. */
  featureCount: number;
}

/** Where a row came from, for errors: the file and its 1-based line (the header is line 1). */
export interface CsvRowOrigin {
  file: string;
  row: number;
}

/** A whole CSV file's samples. */
export interface CsvTable {
  header: CsvHeader;
  count: number;
  /**
   * `count x featureCount`, row-major. Uint8Array when every feature value
   * is an integer in 0..255 (pixels, as an IDX export), else Float32Array.
   */
  features: Uint8Array | Float32Array;
  labels: Uint8Array;
}

function rowError(where: CsvRowOrigin, why: string, details: Record<string, unknown> = {}): StrataError {
  return new StrataError('STRATA_ERR_DATASET_FILE', `${where.file}: row ${where.row}: ${why}`, { file: where.file, row: where.row, ...details });
}

function unquote(field: string): string {
  const t = field.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/""/g, '"').trim() : t;
}

/** Reads a header row; it must name a `label` column and at least one feature. */
export function parseCsvHeader(line: string, file: string): CsvHeader {
  const columns = line.replace(/^\uFEFF/, '').replace(/\r$/, '').split(',').map(unquote);
  const labelIndex = columns.indexOf('label');
  const where = { file, row: 1 };
  if (labelIndex < 0) throw rowError(where, `the header has no column named 'label' (columns: ${columns.slice(0, 8).join(', ')}${columns.length > 8 ? ', ...' : ''})`);
  if (columns.length < 2) throw rowError(where, 'the header names no feature column besides label');
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw rowError(where, `column '${c}' appears twice in the header`, { column: c });
    seen.add(c);
  }
  return { columns, labelIndex, featureCount: columns.length - 1 };
}

function checkLabel(v: number, where: CsvRowOrigin): number {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw rowError(where, `label ${v} is not a class id (an integer 0..255)`, { column: 'label' });
  return v;
}

/**
 * One data row (no line break) under `header`: its features in header order
 * (label left out) and its label. For a live feed of single rows; whole
 * files go through the faster `readCsvFile`.
 *
 * @throws StrataError `STRATA_ERR_DATASET_FILE` naming the file, row and column.
 */
export function parseCsvRow(line: string, header: CsvHeader, where: CsvRowOrigin, out?: Float32Array): { features: Float32Array; label: number } {
  const fields = line.replace(/\r$/, '').split(',');
  if (fields.length !== header.columns.length) {
    throw rowError(where, `${fields.length} fields, the header has ${header.columns.length}`, { expected: header.columns.length, actual: fields.length });
  }
  const features = out ?? new Float32Array(header.featureCount);
  let label = 0;
  let k = 0;
  for (let i = 0; i < fields.length; i++) {
    const text = unquote(fields[i]!);
    const v = text === '' ? Number.NaN : Number(text);
    if (!Number.isFinite(v)) throw rowError(where, `column '${header.columns[i]}': '${text}' is not a number`, { column: header.columns[i] });
    if (i === header.labelIndex) label = checkLabel(v, where);
    else features[k++] = v;
  }
  return { features, label };
}

const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * Reads a whole CSV file in one pass over its bytes: numbers are parsed in
 * place (integers and plain decimals; anything else, such as quoted fields
 * or exponents with many digits, through `Number`). Features land in a
 * Uint8Array while every value is a byte, in a Float32Array from the first
 * one that is not.
 *
 * @throws StrataError `STRATA_ERR_DATASET_MISSING` (no file),
 *   `STRATA_ERR_DATASET_FILE` naming the file, row and column of the first
 *   malformed field.
 */
export function readCsvFile(file: string, expectHeader?: CsvHeader): CsvTable {
  if (!existsSync(file)) throw new StrataError('STRATA_ERR_DATASET_MISSING', `${file}: file not found`, { file });
  const buf = readFileSync(file);
  let at = buf.indexOf(LF);
  const headerEnd = at < 0 ? buf.length : at;
  const header = parseCsvHeader(buf.toString('utf8', 0, headerEnd), file);
  if (expectHeader !== undefined && header.columns.join(',') !== expectHeader.columns.join(',')) {
    throw rowError({ file, row: 1 }, 'its header differs from train.csv\'s (the same columns, in the same order, are needed)');
  }
  let lines = 0;
  for (let i = buf.indexOf(LF); i >= 0; i = buf.indexOf(LF, i + 1)) lines++;
  const maxRows = lines + 1;
  const F = header.featureCount;
  const cols = header.columns.length;
  const labelIndex = header.labelIndex;
  let bytes: Uint8Array | null = new Uint8Array(maxRows * F);
  let floats: Float32Array | null = null;
  const labels = new Uint8Array(maxRows);
  let count = 0;
  let line = 1;
  at = headerEnd + 1;
  const n = buf.length;
  while (at < n) {
    line++;
    // Blank lines (and a trailing newline) are skipped.
    let probe = at;
    while (probe < n && (buf[probe] === SPACE || buf[probe] === TAB || buf[probe] === CR)) probe++;
    if (probe >= n) break;
    if (buf[probe] === LF) {
      at = probe + 1;
      continue;
    }
    const where = (): CsvRowOrigin => ({ file, row: line });
    let k = 0;
    let col = 0;
    const rowBase = count * F;
    for (;;) {
      // One field: [spaces] number [spaces], ended by ',' or the end of the line.
      let p = at;
      while (p < n && (buf[p] === SPACE || buf[p] === TAB)) p++;
      const start = p;
      let neg = false;
      let c = buf[p];
      if (c === MINUS || c === PLUS) {
        neg = c === MINUS;
        p++;
      }
      let int = 0;
      let digits = 0;
      while (p < n && (c = buf[p]!) >= ZERO && c <= NINE) {
        int = int * 10 + (c - ZERO);
        digits++;
        p++;
      }
      let frac = 0;
      let fracDigits = 0;
      if (p < n && buf[p] === DOT) {
        p++;
        while (p < n && (c = buf[p]!) >= ZERO && c <= NINE) {
          if (fracDigits < 22) {
            frac = frac * 10 + (c - ZERO);
            fracDigits++;
          }
          p++;
        }
      }
      let value: number;
      let end = p;
      while (end < n && (buf[end] === SPACE || buf[end] === TAB)) end++;
      const stop = end >= n ? LF : buf[end]!;
      if ((digits > 0 || fracDigits > 0) && digits <= 15 && (stop === COMMA || stop === LF || stop === CR)) {
        value = fracDigits === 0 ? int : int + frac / POW10[fracDigits]!;
        if (neg) value = -value;
        p = end;
      } else {
        // Anything else (exponents, quotes, long numbers, junk): the field as text, through Number.
        let e = start;
        let quoted = false;
        while (e < n && ((quoted || (buf[e] !== COMMA && buf[e] !== LF)))) {
          if (buf[e] === 0x22) quoted = !quoted;
          e++;
        }
        const text = unquote(buf.toString('utf8', start, e).replace(/\r$/, ''));
        value = text === '' ? Number.NaN : Number(text);
        if (!Number.isFinite(value)) {
          const column = header.columns[col] ?? `#${col + 1}`;
          if (col >= cols) throw rowError(where(), `more fields than the header's ${cols}`, { expected: cols });
          throw rowError(where(), `column '${column}': '${text.slice(0, 40)}' is not a number`, { column });
        }
        p = e;
      }
      if (col >= cols) throw rowError(where(), `more fields than the header's ${cols}`, { expected: cols });
      if (col === labelIndex) {
        labels[count] = checkLabel(value, where());
      } else {
        if (bytes !== null && (value < 0 || value > 255 || !Number.isInteger(value))) {
          floats = new Float32Array(maxRows * F);
          for (let i = 0; i < rowBase + k; i++) floats[i] = bytes[i]!;
          bytes = null;
        }
        if (bytes !== null) bytes[rowBase + k] = value;
        else floats![rowBase + k] = value;
        k++;
      }
      col++;
      const sep = p < n ? buf[p] : LF;
      if (sep === COMMA) {
        at = p + 1;
        continue;
      }
      if (sep === CR && (p + 1 >= n || buf[p + 1] === LF)) p++;
      else if (sep !== LF) throw rowError(where(), `column '${header.columns[col - 1] ?? col}': unexpected character '${String.fromCharCode(sep!)}'`, { column: header.columns[col - 1] });
      at = p + 1;
      break;
    }
    if (col !== cols) throw rowError(where(), `${col} fields, the header has ${cols}`, { expected: cols, actual: col });
    count++;
  }
  const features = bytes !== null ? bytes.slice(0, count * F) : floats!.slice(0, count * F);
  return { header, count, features, labels: labels.slice(0, count) };
}
