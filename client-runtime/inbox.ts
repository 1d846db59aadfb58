import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { ArrivingSample } from '../storage-tier/arrival-log.js';

/** What an inbox's samples must look like (the device's data set's). */
export interface InboxShape {
  featureSize: number;
  featureType: 'uint8' | 'float32';
  numClasses: number;
}

export interface InboxOptions {
  dir: string;
  shape: InboxShape;
  /** Where taken-in samples go; must commit them before it returns (`DeviceAgent.ingest`). */
  ingest: (samples: readonly ArrivingSample[]) => void;
  /** Also rescan this often, besides file-system events. Default 250 ms. */
  pollMs?: number;
  logger?: Logger;
}

export interface InboxStats {
  files: number;
  samples: number;
  rejected: number;
}

/**
 * `strata agent --inbox DIR`: sample files dropped into a folder are taken
 * in as they arrive. A CSV file (a header row, a `label` column holding class
 * ids 0..K-1, every other column a feature) brings one sample per row. Each
 * file's samples are committed to the device's store before the file is
 * removed, so a power cut loses nothing (a file caught between the two is
 * taken in again). A malformed file is moved to `DIR/rejected/` with a coded
 * error naming the file and row. Write files elsewhere and move them in (a
 * name starting with `.` or ending in `.tmp` / `.part` is left alone).
 */
export class Inbox {
  readonly dir: string;
  readonly #o: InboxOptions;
  readonly #stats: InboxStats = { files: 0, samples: 0, rejected: 0 };
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning = false;
  #again = false;
  #stopped = false;

  constructor(options: InboxOptions) {
    this.#o = options;
    this.dir = path.resolve(options.dir);
    if (!existsSync(this.dir) || !statSync(this.dir).isDirectory()) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `inbox: ${this.dir} is not a directory`, { option: 'inbox', file: this.dir });
    }
  }

  get stats(): InboxStats {
    return { ...this.#stats };
  }

  /** Takes in what is there now, then watches for more. */
  start(): void {
    this.scan();
    try {
      this.#watcher = watch(this.dir, () => this.scan());
      this.#watcher.on('error', () => undefined);
    } catch {
      // Polling alone still works.
    }
    this.#timer = setInterval(() => this.scan(), this.#o.pollMs ?? 250);
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
  }

  /** Takes in every file waiting now (synchronously: each file's samples are committed, then the file removed). */
  scan(): void {
    if (this.#stopped) return;
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#scanning = true;
    try {
      do {
        this.#again = false;
        for (const name of readdirSync(this.dir).sort()) {
          if (this.#stopped) return;
          if (name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part')) continue;
          const file = path.join(this.dir, name);
          if (!name.toLowerCase().endsWith('.csv') || !statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
          this.#take(file);
        }
      } while (this.#again);
    } finally {
      this.#scanning = false;
    }
  }

  #take(file: string): void {
    let samples: ArrivingSample[];
    try {
      samples = parseSampleCsv(readFileSync(file, 'utf8'), this.#o.shape, file);
    } catch (err) {
      if (!(err instanceof StrataError)) throw err;
      this.#stats.rejected++;
      this.#o.logger?.warn({ code: err.code, file, ...err.details }, `inbox: ${err.message}; moved to rejected/`);
      const rejected = path.join(this.dir, 'rejected');
      mkdirSync(rejected, { recursive: true });
      renameSync(file, path.join(rejected, path.basename(file)));
      return;
    }
    this.#o.ingest(samples);
    unlinkSync(file);
    this.#stats.files++;
    this.#stats.samples += samples.length;
    this.#o.logger?.debug({ file, samples: samples.length }, 'inbox: taken in');
  }
}

/**
 * Parses a CSV of samples: a header row naming a `label` column (class ids
 * 0..K-1) and `featureSize` numeric feature columns, one sample per row
 * (uint8 features: integers 0..255). A bad row is STRATA_ERR_DATASET_FILE
 * naming the file and the row (1-based, the header being row 1). Each
 * sample's `source` is `<file name>:<row>`.
 */
export function parseSampleCsv(text: string, shape: InboxShape, file: string): ArrivingSample[] {
  const lines = text.split(/\r?\n/);
  const bad = (row: number, why: string): StrataError => new StrataError('STRATA_ERR_DATASET_FILE', `${file}: row ${row}: ${why}`, { file, row });
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const labelAt = header.indexOf('label');
  if (labelAt < 0) throw bad(1, 'the header has no "label" column');
  if (header.length - 1 !== shape.featureSize) throw bad(1, `expected ${shape.featureSize} feature columns besides "label", got ${header.length - 1}`);
  const out: ArrivingSample[] = [];
  for (let r = 1; r < lines.length; r++) {
    const line = lines[r]!;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    if (cells.length !== header.length) throw bad(r + 1, `expected ${header.length} values, got ${cells.length}`);
    const label = Number(cells[labelAt]);
    if (!Number.isInteger(label) || label < 0 || label >= shape.numClasses) throw bad(r + 1, `label '${cells[labelAt]!.trim()}' is not a class id in 0..${shape.numClasses - 1}`);
    const features = shape.featureType === 'uint8' ? new Uint8Array(shape.featureSize) : new Float32Array(shape.featureSize);
    let k = 0;
    for (let c = 0; c < cells.length; c++) {
      if (c === labelAt) continue;
      const cell = cells[c]!.trim();
      const v = Number(cell);
      if (cell === '' || !Number.isFinite(v)) throw bad(r + 1, `column "${header[c]}": '${cell}' is not a number`);
      if (shape.featureType === 'uint8' && (!Number.isInteger(v) || v < 0 || v > 255)) throw bad(r + 1, `column "${header[c]}": '${cell}' is not an integer in 0..255`);
      features[k++] = v;
    }
    out.push({ label, features, source: `${path.basename(file)}:${r + 1}` });
  }
  return out;
}
