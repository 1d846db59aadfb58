import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSampleStoreOptions, migrate, SampleStore, sampleStoreMigrations, STRATA_APPLICATION_ID } from '../../storage-tier/index.js';
import { isStrataError } from '../../common/strata-error.js';
import { pixelSample, samplesOfClasses, seededRng, tempDir, type TempDir } from './helpers.js';

let tmp: TempDir;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.remove());

function expectCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isStrataError(caught), `expected a StrataError ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
}

/** Per-class count, min and max ordinal as stored, plus the persisted class table. */
function rawClassStats(file: string): { rows: Array<{ label: number; n: number; lo: number; hi: number }>; classes: Array<{ label: number; count: number }> } {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare('SELECT label, count(*) AS n, min(ord) AS lo, max(ord) AS hi FROM sample_rows GROUP BY label ORDER BY label').all() as Array<{ label: number; n: number; lo: number; hi: number }>;
    const classes = db.prepare('SELECT label, count FROM sample_classes ORDER BY label').all() as Array<{ label: number; count: number }>;
    return { rows, classes };
  } finally {
    db.close();
  }
}

describe('SampleStore ingest and fetch', () => {
  it('round-trips uint8 features with their shape, and float32 features with logits', () => {
    const file = tmp.file('roundtrip.db');
    const store = SampleStore.open(file);
    expect(store.migration).toMatchObject({ from: 0, to: 5 });
    const pixels = pixelSample(0, 3, 1);
    const floats = new Float32Array([0.5, -1.25, 3e-7, Number.MAX_VALUE / 2, -0]);
    const logits = new Float32Array([1.5, -2.5, 0.125]);
    const result = store.ingest([pixels, { task: 1, label: 7, features: floats, logits }]);
    expect(result).toEqual({ batch: 1, inserted: 2, evicted: 0, total: 2 });
    store.close();

    const reopened = SampleStore.open(file);
    expect(reopened.migration.applied).toEqual([]);
    const a = reopened.fetchRandomOfClass(3);
    expect(a).not.toBeNull();
    expect(a!.dtype).toBe('uint8');
    expect(a!.features).toBeInstanceOf(Uint8Array);
    expect(Array.from(a!.features)).toEqual(Array.from(pixels.features));
    expect(a!.shape).toEqual([28, 28]);
    expect(a!.logits).toBeNull();
    expect(a).toMatchObject({ id: 1, batch: 1, task: 0, label: 3 });

    const b = reopened.fetchRandomOfClass(7)!;
    expect(b.dtype).toBe('float32');
    expect(b.features).toBeInstanceOf(Float32Array);
    expect(Array.from(b.features)).toEqual(Array.from(floats));
    expect(Object.is(b.features[4], -0)).toBe(true);
    expect(b.shape).toEqual([5]);
    expect(Array.from(b.logits!)).toEqual(Array.from(logits));
    expect(b).toMatchObject({ id: 2, batch: 1, task: 1, label: 7 });

    expect(reopened.fetchRandomOfClass(9)).toBeNull();
    const next = reopened.ingest([pixelSample(2, 3, 2)]);
    expect(next).toEqual({ batch: 2, inserted: 1, evicted: 0, total: 3 });
    expect(reopened.bytesUsed().payloadBytes).toBe(784 * 2 + 5 * 4 + 3 * 4);
    expect(reopened.bytesUsed().fileBytes).toBeGreaterThan(0);
    reopened.close();
  });

  it('works on a handed-in :memory: connection and leaves it open on close', () => {
    const db = new Database(':memory:');
    const store = SampleStore.open(db);
    store.ingest(samplesOfClasses(0, [0, 1], 5));
    expect(store.countsByClass()).toEqual(new Map([[0, 5], [1, 5]]));
    store.close();
    expect(db.open).toBe(true);
    expect(db.pragma('application_id', { simple: true })).toBe(0x53545241);
    db.close();
  });

  it('fetches only the asked class and covers all of its samples', () => {
    const store = SampleStore.open(tmp.file('random.db'), { rng: seededRng(1) });
    store.ingest(samplesOfClasses(0, [0, 1, 2, 3], 20));
    const seen = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const s = store.fetchRandomOfClass(2)!;
      expect(s.label).toBe(2);
      seen.set(s.id, (seen.get(s.id) ?? 0) + 1);
    }
    expect(seen.size).toBe(20);
    // Uniform: expected 100 hits each.
    for (const hits of seen.values()) expect(hits).toBeGreaterThan(50);

    const labels = [3, 0, 9, 1, 3];
    const many = store.fetchManyRandomOfClasses(labels);
    expect(many.map((s) => s?.label ?? null)).toEqual([3, 0, null, 1, 3]);
    expect(store.count()).toBe(80);
    store.close();
  });

  it('evicts class-balanced: per-class counts stay within one of each other', () => {
    const file = tmp.file('evict.db');
    const store = SampleStore.open(file, { capacity: 100, rng: seededRng(7) });
    // Class-incremental stream: 5 tasks of 2 classes, 150 samples per class.
    for (let task = 0; task < 5; task++) {
      const labels = [2 * task, 2 * task + 1];
      for (let b = 0; b < 3; b++) {
        const r = store.ingest(samplesOfClasses(task, labels, 50).map((s, i) => ({ ...s, features: pixelSample(task, s.label, b * 50 + i).features })));
        expect(r.total).toBeLessThanOrEqual(100);
        expect(r.inserted).toBe(100);
      }
      const counts = [...store.countsByClass().values()];
      expect(counts.length).toBe(2 * (task + 1));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(100);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
    expect(store.countsByClass()).toEqual(new Map(Array.from({ length: 10 }, (_, l) => [l, 10])));
    // Random within the class: the 10 survivors of class 0 are not just its oldest or newest.
    const ids = new Set<number>();
    for (let i = 0; i < 500; i++) ids.add(store.fetchRandomOfClass(0)!.id);
    expect(ids.size).toBe(10);
    const sorted = [...ids].sort((a, b) => a - b);
    expect(sorted.at(-1)! - sorted[0]!).toBeGreaterThan(40);
    store.close();

    const { rows, classes } = rawClassStats(file);
    for (const r of rows) expect(r).toEqual({ label: r.label, n: 10, lo: 0, hi: 9 });
    expect(classes).toEqual(rows.map((r) => ({ label: r.label, count: r.n })));
    // Reopened with a smaller budget, the next ingest evicts down to it.
    const smaller = SampleStore.open(file, { capacity: 50, rng: seededRng(8) });
    const r = smaller.ingest([pixelSample(5, 10, 0)]);
    expect(r).toMatchObject({ inserted: 1, evicted: 51, total: 50 });
    // The newcomer (1 sample) is below its share, so only the 10 old classes lose samples.
    const after = smaller.countsByClass();
    expect(after.get(10)).toBe(1);
    const old = [...after].filter(([l]) => l !== 10).map(([, n]) => n);
    expect(Math.max(...old) - Math.min(...old)).toBeLessThanOrEqual(1);
    smaller.close();
  });

  it("stores nothing with capacity 'none'", () => {
    const file = tmp.file('none.db');
    const store = SampleStore.open(file, { capacity: 'none' });
    expect(store.ingest(samplesOfClasses(0, [0, 1], 10))).toEqual({ batch: null, inserted: 0, evicted: 0, total: 0 });
    expect(store.count()).toBe(0);
    expect(store.countsByClass().size).toBe(0);
    expect(store.fetchRandomOfClass(0)).toBeNull();
    expect(store.bytesUsed().payloadBytes).toBe(0);
    store.close();
  });

  it('rejects a bad sample before writing any of the batch', () => {
    const store = SampleStore.open(tmp.file('bad-sample.db'));
    const batch = [pixelSample(0, 1, 0), { task: 0, label: -1, features: new Uint8Array(4) }];
    expectCode(() => store.ingest(batch), 'STRATA_ERR_BAD_SAMPLE');
    expectCode(() => store.ingest([{ task: 0, label: 1, features: new Uint8Array(6), shape: [2, 2] }]), 'STRATA_ERR_BAD_SAMPLE');
    expect(store.count()).toBe(0);
    expect(store.ingest([pixelSample(0, 1, 0)]).batch).toBe(1);
    store.close();
    expectCode(() => store.count(), 'STRATA_ERR_STORE_CLOSED');
  });

  it('rolls a failed batch back whole, in the file and in memory', () => {
    const db = new Database(tmp.file('rollback.db'));
    const store = SampleStore.open(db, { capacity: 30, rng: seededRng(2) });
    store.ingest(samplesOfClasses(0, [0, 1], 15));
    // A trigger makes the write of class 99 fail after earlier rows (and an eviction) went in.
    db.exec("CREATE TRIGGER no_99 BEFORE INSERT ON samples WHEN NEW.slot % 16777216 = 99 BEGIN SELECT RAISE(ABORT, 'refused'); END");
    const doomed = [...samplesOfClasses(1, [2, 3], 2), pixelSample(1, 99, 0)];
    expectCode(() => store.ingest(doomed), 'STRATA_ERR_STORE_IO');
    expect(store.countsByClass()).toEqual(new Map([[0, 15], [1, 15]]));
    expect(db.prepare('SELECT count(*) FROM samples').pluck().get()).toBe(30);
    expect(store.ingest(samplesOfClasses(1, [2, 3], 2))).toEqual({ batch: 2, inserted: 4, evicted: 4, total: 30 });
    store.close();
    db.close();
  });

  it('validates options in compileSampleStoreOptions, naming the option', () => {
    expect(compileSampleStoreOptions()).toMatchObject({ capacity: 'all', readonly: false, synchronous: 'NORMAL', integrityCheck: 'quick' });
    expect(compileSampleStoreOptions({ readonly: true }).integrityCheck).toBe('off');
    for (const capacity of [0, -5, 1.5, 'some']) {
      try {
        compileSampleStoreOptions({ capacity: capacity as number });
        expect.unreachable();
      } catch (err) {
        expect(err).toMatchObject({ code: 'STRATA_ERR_BAD_OPTION', details: { option: 'capacity' } });
      }
    }
    expectCode(() => compileSampleStoreOptions({ synchronous: 'OFF' as 'FULL' }), 'STRATA_ERR_BAD_OPTION');
  });
});

describe('read-only connection (the swap worker)', () => {
  it('sees the writer’s commits, stays consistent while it evicts, and refuses to write', () => {
    const file = tmp.file('readonly.db');
    const writer = SampleStore.open(file, { capacity: 200, rng: seededRng(3) });
    writer.ingest(samplesOfClasses(0, [0, 1], 50));
    const reader = SampleStore.openReadOnly(file);
    expect(reader.readonly).toBe(true);
    expect(reader.count()).toBe(100);
    expectCode(() => reader.ingest([pixelSample(0, 0, 0)]), 'STRATA_ERR_STORE_READONLY');

    for (let task = 1; task < 5; task++) {
      writer.ingest(samplesOfClasses(task, [2 * task, 2 * task + 1], 100));
      expect(reader.countsByClass()).toEqual(writer.countsByClass());
      const labels = Array.from({ length: 64 }, (_, i) => i % (2 * task + 2));
      const got = reader.fetchManyRandomOfClasses(labels);
      expect(got.map((s) => s?.label)).toEqual(labels);
      expect(reader.fetchRandomOfClass(2 * task + 1)?.label).toBe(2 * task + 1);
    }
    expect(reader.bytesUsed().payloadBytes).toBe(200 * 784);
    reader.close();
    writer.close();
  });

  it('refuses to create a store', () => {
    expectCode(() => SampleStore.openReadOnly(tmp.file('missing.db')), 'STRATA_ERR_STORE_OPEN');
  });
});

describe('schemas 3 and 4: samples keyed by (ord, label) in the rowid, formats shared', () => {
  it('migrates a schema-2 store: every sample kept, dense per class, fetched by class; the old index gone', () => {
    const file = tmp.file('schema2.db');
    const db = new Database(file);
    db.pragma(`application_id = ${STRATA_APPLICATION_ID}`);
    expect(migrate(db, sampleStoreMigrations.filter((m) => m.version <= 2)).to).toBe(2);
    const insert = db.prepare('INSERT INTO samples (id, batch, task, label, ord, dtype, shape, features, logits) VALUES (?, 1, 0, ?, ?, 0, NULL, ?, NULL)');
    const perClass = [5, 3, 4];
    let id = 1;
    db.transaction(() => {
      perClass.forEach((n, label) => {
        for (let ord = 0; ord < n; ord++) insert.run(id++, label, ord, Buffer.from([label, ord, 7]));
        db.prepare('INSERT INTO sample_classes (label, count, bytes) VALUES (?, ?, ?)').run(label, n, 3 * n);
      });
      db.prepare("UPDATE store_meta SET value = ? WHERE key = 'next_id'").run(id);
      db.prepare("UPDATE store_meta SET value = 2 WHERE key = 'next_batch'").run();
    })();
    db.close();

    const store = SampleStore.open(file);
    expect(store.migration).toMatchObject({ from: 2, to: 5 });
    expect([...store.countsByClass()]).toEqual([[0, 5], [1, 3], [2, 4]]);
    for (let k = 0; k < 30; k++) {
      const label = k % 3;
      const s = store.fetchRandomOfClass(label)!;
      expect(s.label).toBe(label);
      expect([...s.features].slice(0, 1)).toEqual([label]);
      expect(s.features[1]!).toBeLessThan(perClass[label]!);
    }
    // New samples continue the sequence and the ordinals.
    store.ingest([{ task: 1, label: 1, features: new Uint8Array([1, 3, 7]) }]);
    expect(store.countsByClass().get(1)).toBe(4);
    store.close();
    const after = new Database(file, { readonly: true });
    expect(after.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'samples_by_class'").pluck().get()).toBe(0);
    expect(after.prepare('SELECT count(*) FROM sample_rows WHERE slot <> ord * 16777216 + label').pluck().get()).toBe(0);
    expect(after.prepare('SELECT max(id) FROM samples').pluck().get()).toBe(id);
    after.close();
  });

  it('migrates a schema-3 store to 4: dtype, shape, logits, label, ord, id, batch and task read back as written; sample_rows shows the old columns', () => {
    const file = tmp.file('schema3.db');
    const db = new Database(file);
    db.pragma(`application_id = ${STRATA_APPLICATION_ID}`);
    expect(migrate(db, sampleStoreMigrations.filter((m) => m.version <= 3)).to).toBe(3);
    const insert = db.prepare('INSERT INTO samples (slot, id, batch, task, label, ord, dtype, shape, features, logits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const floats = new Float32Array([0.5, -2, 8]);
    const logits = new Float32Array([1, 2]);
    const rows: Array<[number, number, number, number, number, number, number, string | null, Uint8Array, Uint8Array | null]> = [
      [0 * 16777216 + 0, 1, 1, 0, 0, 0, 0, '2,2', new Uint8Array([1, 2, 3, 4]), null],
      [0 * 16777216 + 5, 2, 1, 0, 5, 0, 1, null, new Uint8Array(floats.buffer), new Uint8Array(logits.buffer)],
      [1 * 16777216 + 0, 3, 2, 1, 0, 1, 0, '2,2', new Uint8Array([5, 6, 7, 8]), null],
    ];
    db.transaction(() => {
      for (const r of rows) insert.run(...r);
      db.prepare('INSERT INTO sample_classes (label, count, bytes) VALUES (0, 2, 8), (5, 1, 20)').run();
      db.prepare("UPDATE store_meta SET value = 4 WHERE key = 'next_id'").run();
      db.prepare("UPDATE store_meta SET value = 3 WHERE key = 'next_batch'").run();
    })();
    db.close();

    const store = SampleStore.open(file, { rng: seededRng(1) });
    expect(store.migration).toMatchObject({ from: 3, to: 5, applied: [{ version: 4 }, { version: 5 }] });
    const f = store.fetchRandomOfClass(5)!;
    expect(f).toMatchObject({ id: 2, batch: 1, task: 0, label: 5, dtype: 'float32', shape: [3] });
    expect([...f.features]).toEqual([...floats]);
    expect([...f.logits!]).toEqual([...logits]);
    const seen = new Set<number>();
    for (let k = 0; k < 40; k++) {
      const s = store.fetchRandomOfClass(0)!;
      expect(s).toMatchObject({ label: 0, dtype: 'uint8', shape: [2, 2], logits: null });
      seen.add(s.id);
      expect([...s.features]).toEqual(s.id === 1 ? [1, 2, 3, 4] : [5, 6, 7, 8]);
      expect(s).toMatchObject(s.id === 1 ? { batch: 1, task: 0 } : { batch: 2, task: 1 });
    }
    expect([...seen].sort()).toEqual([1, 3]);
    store.close();
    const after = new Database(file, { readonly: true });
    expect(after.prepare('SELECT slot, id, batch, task, label, ord, dtype, shape FROM sample_rows ORDER BY slot').raw().all()).toEqual(rows.map((r) => r.slice(0, 8)));
    expect(after.prepare('SELECT dtype, shape FROM sample_formats ORDER BY format').raw().all()).toEqual([[0, '2,2'], [1, '']]);
    after.close();
  });

  it('stores each (dtype, shape) once; a reader opened earlier decodes a format the writer added later; a rolled-back batch takes its new format with it', () => {
    const file = tmp.file('formats.db');
    const store = SampleStore.open(file);
    store.ingest([pixelSample(0, 1, 0), pixelSample(0, 2, 1)]);
    const reader = SampleStore.openReadOnly(file);
    expect(reader.fetchRandomOfClass(1)).toMatchObject({ dtype: 'uint8', shape: [28, 28] });
    store.ingest([{ task: 1, label: 3, features: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }]);
    expect(reader.fetchRandomOfClass(3)).toMatchObject({ label: 3, dtype: 'float32', shape: [2, 3] });
    reader.close();
    const db = new Database(file);
    db.exec("CREATE TRIGGER no_9 BEFORE INSERT ON samples WHEN NEW.slot % 16777216 = 9 BEGIN SELECT RAISE(ABORT, 'refused'); END");
    db.close();
    expectCode(() => store.ingest([{ task: 1, label: 9, features: new Uint8Array(5) }]), 'STRATA_ERR_STORE_IO');
    // The format [5] of uint8 was rolled back with its batch; a later batch writes it again and reads it back.
    store.ingest([{ task: 1, label: 4, features: new Uint8Array([9, 9, 9, 9, 9]) }]);
    expect(store.fetchRandomOfClass(4)).toMatchObject({ label: 4, dtype: 'uint8', shape: [5] });
    store.close();
    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT dtype, shape FROM sample_formats ORDER BY format').raw().all()).toEqual([[0, '28,28'], [1, '2,3'], [0, '']]);
    check.close();
  });
});
