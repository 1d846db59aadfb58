import { StrataError } from '../common/strata-error.js';
import type { IntegrityCheck, Synchronous } from './store-file.js';

/** `--storage all|none|N`: keep every sample, none, or at most N (class-balanced eviction). */
export type StorageCapacity = 'all' | 'none' | number;

export interface SampleStoreOptions {
  /**
   * How many samples the store keeps. `'all'` (default) keeps every sample;
   * `'none'` makes `ingest` store nothing; a number N keeps at most N, evicting
   * from the class with the most stored samples (a random sample within it).
   */
  capacity?: StorageCapacity;
  /** Open read-only: the swap worker's own connection to the writer's file. Default false. */
  readonly?: boolean;
  /**
   * SQLite `synchronous` for the writer. Default `'NORMAL'`: in WAL mode a
   * committed batch survives the process being killed (even `kill -9`);
   * `'FULL'` also survives power loss, at an fsync per batch.
   */
  synchronous?: Synchronous;
  /**
   * `PRAGMA quick_check` on open. Default `'quick'` read-write and `'off'`
   * read-only (the writer that owns the file has already checked it).
   */
  integrityCheck?: IntegrityCheck;
  /** How long a statement waits for a lock held by another connection. Default 5000. */
  busyTimeoutMs?: number;
  /** SQLite page cache per connection, in KiB. Default 16384 (16 MiB). */
  cacheSizeKiB?: number;
  /** Bytes of the file SQLite may memory-map for reads (0 = off). Default 268435456 (256 MiB). */
  mmapSizeBytes?: number;
  /** Uniform [0, 1) source for eviction and the default for fetches. Default `Math.random`. */
  rng?: () => number;
}

export interface CompiledSampleStoreOptions {
  readonly capacity: StorageCapacity;
  readonly readonly: boolean;
  readonly synchronous: Synchronous;
  readonly integrityCheck: IntegrityCheck;
  readonly busyTimeoutMs: number;
  readonly cacheSizeKiB: number;
  readonly mmapSizeBytes: number;
  readonly rng: () => number;
}

function badOption(option: string, why: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `sample store option '${option}' ${why} (got ${JSON.stringify(value) ?? String(value)})`, { option, value });
}

function nonNegativeInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badOption(option, 'must be an integer >= 0', value);
  return value;
}

/** Applies defaults and validates; bad options fail here, naming the option. */
export function compileSampleStoreOptions(options: SampleStoreOptions = {}): CompiledSampleStoreOptions {
  const capacity = options.capacity ?? 'all';
  if (capacity !== 'all' && capacity !== 'none' && !(typeof capacity === 'number' && Number.isSafeInteger(capacity) && capacity > 0)) {
    throw badOption('capacity', "must be 'all', 'none' or an integer > 0", capacity);
  }
  const readonly = options.readonly ?? false;
  if (typeof readonly !== 'boolean') throw badOption('readonly', 'must be a boolean', readonly);
  const synchronous = options.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw badOption('synchronous', "must be 'NORMAL' or 'FULL'", synchronous);
  const integrityCheck = options.integrityCheck ?? (readonly ? 'off' : 'quick');
  if (integrityCheck !== 'quick' && integrityCheck !== 'off') throw badOption('integrityCheck', "must be 'quick' or 'off'", integrityCheck);
  const rng = options.rng ?? Math.random;
  if (typeof rng !== 'function') throw badOption('rng', 'must be a function', typeof rng);
  return Object.freeze({
    capacity,
    readonly,
    synchronous,
    integrityCheck,
    busyTimeoutMs: nonNegativeInt('busyTimeoutMs', options.busyTimeoutMs, 5000),
    cacheSizeKiB: nonNegativeInt('cacheSizeKiB', options.cacheSizeKiB, 16384),
    mmapSizeBytes: nonNegativeInt('mmapSizeBytes', options.mmapSizeBytes, 256 * 1024 * 1024),
    rng,
  });
}
