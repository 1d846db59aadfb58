import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DataSplit } from './dataset.js';

/**
 * Decoded image data sets on disk, so the processes of one run (a
 * simulation's host, its worker processes and its evaluator all load the
 * data set) decode a folder once: the first takes a lock file and decodes,
 * the others wait for its result. The key covers the folder, every file's
 * path, size and modification time, and the decode shape, so a changed
 * image is decoded afresh. Entries are never evicted: they sit in the OS's
 * temporary directory (or `STRATA_CACHE_DIR`).
 */
export interface ImageCacheOptions {
  /** Default `STRATA_CACHE_DIR/images`, else `<tmpdir>/strata-cache/images`. */
  dir?: string;
  /** A lock older than this is an abandoned one (its process died). Default 10 minutes. */
  staleLockMs?: number;
}

export interface ImageCacheKey {
  /** The data set folder. */
  root: string;
  shape: readonly number[];
  classes: readonly string[];
  splits: readonly (readonly { file: string; label: number }[])[];
}

const MAGIC = Buffer.from('STRATA-IMGCACHE1');

export function defaultImageCacheDir(): string {
  const base = process.env['STRATA_CACHE_DIR'];
  return base !== undefined && base !== '' ? path.join(base, 'images') : path.join(os.tmpdir(), 'strata-cache', 'images');
}

/** The cache file name for a folder's files as they are now. */
export function imageCacheName(key: ImageCacheKey): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ root: path.resolve(key.root), shape: key.shape, classes: key.classes }));
  for (const split of key.splits) {
    h.update('\n--split--');
    for (const { file, label } of split) {
      const st = statSync(file);
      h.update(`\n${file}\t${label}\t${st.size}\t${st.mtimeMs}`);
    }
  }
  return `${h.digest('hex').slice(0, 32)}.bin`;
}

function encode(splits: readonly DataSplit[], featureSize: number): Buffer {
  const header = Buffer.alloc(MAGIC.length + 4 + 4 * splits.length);
  MAGIC.copy(header);
  header.writeUInt32LE(featureSize, MAGIC.length);
  splits.forEach((s, i) => header.writeUInt32LE(s.count, MAGIC.length + 4 + 4 * i));
  const parts: Buffer[] = [header];
  for (const s of splits) {
    const f = s.features as Uint8Array;
    parts.push(Buffer.from(f.buffer, f.byteOffset, s.count * featureSize), Buffer.from(s.labels.buffer, s.labels.byteOffset, s.count));
  }
  return Buffer.concat(parts);
}

function decode(buf: Buffer, nSplits: number, featureSize: number): DataSplit[] | undefined {
  const headerBytes = MAGIC.length + 4 + 4 * nSplits;
  if (buf.length < headerBytes || !buf.subarray(0, MAGIC.length).equals(MAGIC) || buf.readUInt32LE(MAGIC.length) !== featureSize) return undefined;
  const counts = Array.from({ length: nSplits }, (_, i) => buf.readUInt32LE(MAGIC.length + 4 + 4 * i));
  if (buf.length !== headerBytes + counts.reduce((n, c) => n + c * (featureSize + 1), 0)) return undefined;
  let at = headerBytes;
  return counts.map((count) => {
    const features = new Uint8Array(buf.subarray(at, at + count * featureSize));
    at += count * featureSize;
    const labels = new Uint8Array(buf.subarray(at, at + count));
    at += count;
    return { features, labels, count };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The decoded splits of `key` from the cache, or from `decodeAll` (run by
 * one process at a time per key; its result is then cached). A cache that
 * cannot be written (read-only, full) only costs the caching.
 */
export async function cachedImageSplits(key: ImageCacheKey, featureSize: number, decodeAll: () => Promise<DataSplit[]>, options: ImageCacheOptions = {}): Promise<DataSplit[]> {
  const dir = options.dir ?? defaultImageCacheDir();
  const staleMs = options.staleLockMs ?? 10 * 60_000;
  const file = path.join(dir, imageCacheName(key));
  const lock = `${file}.lock`;
  const n = key.splits.length;
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    return decodeAll();
  }
  for (;;) {
    if (existsSync(file)) {
      const hit = decode(readFileSync(file), n, featureSize);
      if (hit !== undefined) return hit;
    }
    let fd: number | undefined;
    try {
      fd = openSync(lock, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return decodeAll();
    }
    if (fd !== undefined) {
      closeSync(fd);
      try {
        const splits = await decodeAll();
        try {
          const tmp = `${file}.${process.pid}.tmp`;
          writeFileSync(tmp, encode(splits, featureSize));
          renameSync(tmp, file);
        } catch {
          // Not cached; the data is still good.
        }
        return splits;
      } finally {
        try { unlinkSync(lock); } catch { /* already gone */ }
      }
    }
    // Another process is decoding: wait for its file, or take over an abandoned lock.
    try {
      if (Date.now() - statSync(lock).mtimeMs > staleMs) unlinkSync(lock);
    } catch {
      // The lock went away meanwhile.
    }
    await sleep(100);
  }
}
