/**
 * `npm run bench -- storage`: the sample store's ingest and same-class random
 * fetch rates for 784-byte (MNIST-like) samples, each next to raw
 * better-sqlite3 doing the same work on the same machine in the same run.
 *
 * Raw baseline: a plain `(id INTEGER PRIMARY KEY, label, features BLOB)`
 * table in its own WAL file (synchronous=NORMAL, as the store), one prepared
 * INSERT per sample and the same transaction per batch; a random sample of
 * class c is one rowid lookup of an id drawn from a JS array of that class's
 * ids (better-sqlite3 defaults otherwise): the cheapest lookup there is,
 * which the store, keeping its per-class index in the file, can near but not beat.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SampleStore, type SampleInput } from '../storage-tier/index.js';
import type { Benchmark } from './benchmark.js';

const SAMPLES = 200_000;
const BATCH = 1_000;
const CLASSES = 10;
const FEATURES = 784;
const FETCHES = 200_000;
const FETCH_BATCH = 32;
const ROUNDS = 2;
/** The issue's bar: each of ingest and fetch at least this share of raw better-sqlite3's rate in the same run. */
const RAW_RATIO_TARGET = 0.9;

function makeBatches(): SampleInput[][] {
  const pool = Array.from({ length: 997 }, () => {
    const f = new Uint8Array(FEATURES);
    for (let i = 0; i < FEATURES; i++) f[i] = (Math.random() * 256) | 0;
    return f;
  });
  const batches: SampleInput[][] = [];
  for (let b = 0; b < SAMPLES / BATCH; b++) {
    const batch: SampleInput[] = [];
    for (let i = 0; i < BATCH; i++) {
      const n = b * BATCH + i;
      batch.push({ task: Math.floor(n / (SAMPLES / 5)), label: n % CLASSES, features: pool[n % pool.length]!, shape: [28, 28] });
    }
    batches.push(batch);
  }
  return batches;
}

function perSecond(count: number, startNs: bigint): number {
  return Math.round(count / (Number(process.hrtime.bigint() - startNs) / 1e9));
}

function timeStoreIngest(file: string, batches: SampleInput[][]): number {
  const store = SampleStore.open(file);
  const t0 = process.hrtime.bigint();
  for (const batch of batches) store.ingest(batch);
  const rate = perSecond(SAMPLES, t0);
  store.close();
  return rate;
}

function timeRawIngest(file: string, batches: SampleInput[][]): { rate: number; ids: number[][] } {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE raw (id INTEGER PRIMARY KEY, label INTEGER NOT NULL, features BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO raw (label, features) VALUES (?, ?)');
  const ids: number[][] = Array.from({ length: CLASSES }, () => []);
  const tx = db.transaction((batch: SampleInput[]) => {
    for (const s of batch) ids[s.label]!.push(Number(insert.run(s.label, s.features).lastInsertRowid));
  });
  const t0 = process.hrtime.bigint();
  for (const batch of batches) tx(batch);
  const rate = perSecond(SAMPLES, t0);
  db.close();
  return { rate, ids };
}

function timeStoreFetch(store: SampleStore): number {
  for (let i = 0; i < 5_000; i++) store.fetchRandomOfClass(i % CLASSES);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < FETCHES; i++) {
    const s = store.fetchRandomOfClass(i % CLASSES);
    if (s === null || s.label !== i % CLASSES) throw new Error('store fetched the wrong class');
  }
  return perSecond(FETCHES, t0);
}

function timeStoreFetchMany(store: SampleStore): number {
  const labels = Array.from({ length: FETCH_BATCH }, (_, i) => i % CLASSES);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < FETCHES / FETCH_BATCH; i++) store.fetchManyRandomOfClasses(labels);
  return perSecond(FETCHES, t0);
}

function timeRawFetch(file: string, ids: number[][]): number {
  const db = new Database(file, { readonly: true });
  const get = db.prepare('SELECT label, features FROM raw WHERE id = ?');
  const pick = (label: number): unknown => {
    const list = ids[label]!;
    return get.get(list[Math.floor(Math.random() * list.length)]);
  };
  for (let i = 0; i < 5_000; i++) pick(i % CLASSES);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < FETCHES; i++) {
    const row = pick(i % CLASSES) as { label: number } | undefined;
    if (row?.label !== i % CLASSES) throw new Error('raw fetched the wrong class');
  }
  const rate = perSecond(FETCHES, t0);
  db.close();
  return rate;
}

const bench: Benchmark = {
  description: `sample store: ingest of ${FEATURES}-byte samples and same-class random fetches vs raw better-sqlite3`,
  async run(ctx) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-storage-'));
    const batches = makeBatches();
    let ingest = 0, rawIngest = 0, fetch = 0, fetchMany = 0, readOnlyFetch = 0, rawFetch = 0;
    try {
      // Interleaved rounds, best of each: absolute speed drifts on a shared machine.
      for (let round = 0; round < ROUNDS; round++) {
        const storeFile = path.join(dir, `store-${round}.db`);
        const rawFile = path.join(dir, `raw-${round}.db`);
        ingest = Math.max(ingest, timeStoreIngest(storeFile, batches));
        const raw = timeRawIngest(rawFile, batches);
        rawIngest = Math.max(rawIngest, raw.rate);
        const store = SampleStore.open(storeFile);
        fetch = Math.max(fetch, timeStoreFetch(store));
        fetchMany = Math.max(fetchMany, timeStoreFetchMany(store));
        // The swap worker's path: its own read-only connection beside the writer.
        const reader = SampleStore.openReadOnly(storeFile);
        readOnlyFetch = Math.max(readOnlyFetch, timeStoreFetch(reader));
        reader.close();
        store.close();
        rawFetch = Math.max(rawFetch, timeRawFetch(rawFile, raw.ids));
      }
      const line = (name: string, ours: number, base: number, target: number): void =>
        ctx.log(`${name.padEnd(38)} ${ours.toLocaleString('en-US').padStart(10)}/s   raw better-sqlite3 ${base.toLocaleString('en-US').padStart(10)}/s   ratio ${(ours / base).toFixed(2)}   target >= ${target.toLocaleString('en-US')}/s ${ours >= target ? 'ok' : 'MISSED'}`);
      ctx.log(`${SAMPLES.toLocaleString('en-US')} samples of ${FEATURES} bytes, ${CLASSES} classes, batches of ${BATCH}; ${FETCHES.toLocaleString('en-US')} fetches; best of ${ROUNDS} rounds`);
      const ratio = (name: string, ours: number, base: number): number => {
        const r = Math.round((ours / base) * 100) / 100;
        ctx.log(`${name.padEnd(38)} ${r.toFixed(2)}x raw better-sqlite3 in this run   target >= ${RAW_RATIO_TARGET}x ${r >= RAW_RATIO_TARGET ? 'ok' : 'MISSED'}`);
        return r;
      };
      line('ingest samples', ingest, rawIngest, 100_000);
      line('same-class random fetch', fetch, rawFetch, 50_000);
      line(`  batched (${FETCH_BATCH} per call)`, fetchMany, rawFetch, 50_000);
      line('  read-only connection (swap worker)', readOnlyFetch, rawFetch, 50_000);
      const ingestRatio = ratio('ingest vs raw', ingest, rawIngest);
      const fetchRatio = ratio('same-class random fetch vs raw', fetch, rawFetch);
      return {
        ingestRatio,
        fetchRatio,
        ingestPerSecond: ingest,
        fetchPerSecond: fetch,
        rawIngestPerSecond: rawIngest,
        rawFetchPerSecond: rawFetch,
        batchedFetchPerSecond: fetchMany,
        readOnlyFetchPerSecond: readOnlyFetch,
        sampleBytes: FEATURES,
        samples: SAMPLES,
        batch: BATCH,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
