import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import { parseCsvHeader, parseCsvRow } from '../ml/datasets/csv-format.js';
import { decodeImage } from '../ml/datasets/image-format.js';
import type { ArrivingSample } from '../storage-tier/arrival-log.js';

/** What an inbox's samples must look like (the device's data set's). */
export interface InboxShape {
  /** [height, width, channels] of one sample (images are decoded and resized to it). */
  inputShape: [number, number, number];
  featureType: 'uint8' | 'float32';
  numClasses: number;
}

export interface InboxOptions {
  dir: string;
  shape: InboxShape;
  /**
   * Where taken-in samples go (`DeviceAgent.ingest`): must commit them
   * before it returns, and take a batch in at most once per `key` (the
   * file's name and a digest of its bytes).
   */
  ingest: (samples: readonly ArrivingSample[], options: { key: string }) => unknown;
  /** Also rescan this often, besides file-system events. Default 250 ms. */
  pollMs?: number;
  logger?: Logger;
}

export interface InboxStats {
  files: number;
  samples: number;
  rejected: number;
}

const IMAGE = /\.(png|jpe?g)$/i;

/**
 * `strata agent --inbox DIR`: sample files dropped into a folder are taken
 * in as they arrive:
 * - `DIR/*.csv`: a header row, a `label` column holding class ids, every
 *   other column a feature; one sample per row;
 * - `DIR/<class id>/*.png|jpg`: one image, decoded and resized to the
 *   device's input (grey or RGB by its channels).
 * Each file's samples are committed to the device's store before the file
 * is removed, so a power cut loses nothing; the file's key (its name and a
 * SHA-256 of its bytes) is committed with them, so a file caught between the
 * two is recognised at the next start and removed, not taken in twice. A malformed file is moved to `DIR/rejected/` with a coded
 * error naming the file (and row). Write files elsewhere and move them in (a
 * name starting with `.` or ending in `.tmp` / `.part` is left alone).
 */
export class Inbox {
  readonly dir: string;
  readonly #o: InboxOptions;
  readonly #stats: InboxStats = { files: 0, samples: 0, rejected: 0 };
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
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
    void this.scan();
    try {
      this.#watcher = watch(this.dir, { recursive: false }, () => void this.scan());
      this.#watcher.on('error', () => undefined);
    } catch {
      // Polling alone still works.
    }
    this.#timer = setInterval(() => void this.scan(), this.#o.pollMs ?? 250);
  }

  /** Stops watching; resolves once the file being taken in (if any) is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
    await this.#scanning;
  }

  /** Takes in every file waiting now, one file at a time (its samples committed, then the file removed). */
  scan(): Promise<void> {
    if (this.#scanning !== undefined) {
      this.#again = true;
      return this.#scanning;
    }
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        for (const file of this.#waiting()) {
          if (this.#stopped) return;
          await this.#take(file);
        }
      } while (this.#again && !this.#stopped);
    };
    // Cleared in a callback, never inside `run` (which may finish before this assignment when there is nothing to take).
    const scanning = run().catch((err: unknown) => {
      this.#o.logger?.error({ err }, 'inbox: scan failed');
    }).finally(() => {
      this.#scanning = undefined;
    });
    this.#scanning = scanning;
    return scanning;
  }

  /** Files to take in, in name order: CSV files at the top, images in numbered class folders. */
  #waiting(): { file: string; label?: number }[] {
    const out: { file: string; label?: number }[] = [];
    const skip = (name: string): boolean => name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part');
    for (const name of readdirSync(this.dir).sort()) {
      if (skip(name) || name === 'rejected') continue;
      const file = path.join(this.dir, name);
      const st = statSync(file, { throwIfNoEntry: false });
      if (st?.isFile() === true && name.toLowerCase().endsWith('.csv')) out.push({ file });
      else if (st?.isDirectory() === true && /^\d+$/.test(name)) {
        for (const image of readdirSync(file).sort()) if (!skip(image) && IMAGE.test(image)) out.push({ file: path.join(file, image), label: Number(name) });
      }
    }
    return out;
  }

  async #take(entry: { file: string; label?: number }): Promise<void> {
    const { file } = entry;
    let samples: ArrivingSample[];
    let key: string;
    try {
      const bytes = readFileSync(file);
      key = `inbox:${path.relative(this.dir, file)}:${createHash('sha256').update(bytes).digest('hex')}`;
      samples = entry.label === undefined ? parseSampleCsv(bytes.toString('utf8'), this.#o.shape, file) : [await this.#image(file, bytes, entry.label)];
    } catch (err) {
      if (!(err instanceof StrataError) || !existsSync(file)) throw err;
      this.#stats.rejected++;
      this.#o.logger?.warn({ code: err.code, ...err.details, file }, `inbox: ${err.message}; moved to rejected/`);
      const rejected = path.join(this.dir, 'rejected');
      mkdirSync(rejected, { recursive: true });
      renameSync(file, path.join(rejected, path.basename(file)));
      return;
    }
    this.#o.ingest(samples, { key });
    unlinkSync(file);
    this.#stats.files++;
    this.#stats.samples += samples.length;
    this.#o.logger?.debug({ file, samples: samples.length }, 'inbox: taken in');
  }

  async #image(file: string, bytes: Uint8Array, label: number): Promise<ArrivingSample> {
    const s = this.#o.shape;
    if (label >= s.numClasses) throw new StrataError('STRATA_ERR_DATASET_FILE', `${file}: class folder ${label} is not a class id in 0..${s.numClasses - 1}`, { file });
    const [h, w, c] = s.inputShape;
    if (s.featureType !== 'uint8' || (c !== 1 && c !== 3)) {
      throw new StrataError('STRATA_ERR_DATASET_FILE', `${file}: this device's samples are not grey or RGB bytes; send CSV`, { file });
    }
    return { label, features: await decodeImage(bytes, file, [h, w, c]), source: path.relative(this.dir, file) };
  }
}

/**
 * Parses a CSV of samples: a header row naming a `label` column (class ids
 * 0..K-1) and one column per feature, one sample per row (uint8 features:
 * integers 0..255). A bad row is STRATA_ERR_DATASET_FILE naming the file and
 * the row (1-based, the header being row 1). Each sample's `source` is
 * `<file name>:<row>`.
 */
export function parseSampleCsv(text: string, shape: InboxShape, file: string): ArrivingSample[] {
  const lines = text.split('\n');
  const header = parseCsvHeader(lines[0] ?? '', file);
  const size = shape.inputShape[0] * shape.inputShape[1] * shape.inputShape[2];
  const bad = (row: number, why: string, details: Record<string, unknown> = {}): StrataError =>
    new StrataError('STRATA_ERR_DATASET_FILE', `${file}: row ${row}: ${why}`, { file, row, ...details });
  if (header.featureCount !== size) throw bad(1, `expected ${size} feature columns besides "label", got ${header.featureCount}`);
  const out: ArrivingSample[] = [];
  for (let r = 1; r < lines.length; r++) {
    if (lines[r]!.trim() === '') continue;
    const row = parseCsvRow(lines[r]!, header, { file, row: r + 1 });
    if (row.label >= shape.numClasses) throw bad(r + 1, `label ${row.label} is not a class id in 0..${shape.numClasses - 1}`, { column: 'label' });
    let features: Uint8Array | Float32Array = row.features;
    if (shape.featureType === 'uint8') {
      features = new Uint8Array(size);
      for (let i = 0; i < size; i++) {
        const v = row.features[i]!;
        if (!Number.isInteger(v) || v < 0 || v > 255) throw bad(r + 1, `column "${header.columns[i >= header.labelIndex ? i + 1 : i]}": ${v} is not an integer in 0..255`);
        features[i] = v;
      }
    }
    out.push({ label: row.label, features, source: `${path.basename(file)}:${r + 1}` });
  }
  return out;
}
