import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampleStore } from '../../storage-tier/index.js';
import { tempDir, type TempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'fixtures', 'ingest-child.mjs');
// The child runs the compiled store: `npm test` builds dist/ before vitest.
const distIndex = path.resolve(here, '../../dist/storage-tier/index.js');
const BATCH = 400;

let tmp: TempDir;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.remove());

/** Runs the child until it has printed `killAfter` commits, then SIGKILLs it mid-ingest. */
function ingestThenKill(file: string, killAfter: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, file, distIndex, String(BATCH)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const committed: number[] = [];
    let out = '';
    let err = '';
    let killed = false;
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const m = /^committed (\d+)$/.exec(line);
        if (m) committed.push(Number(m[1]));
        if (!killed && committed.length >= killAfter) {
          killed = true;
          proc.kill('SIGKILL');
        }
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited (${code}) before being killed: ${err}`));
      else resolve(committed);
    });
  });
}

describe('kill -9 during ingest', () => {
  it.each([12, 25, 40])('keeps every committed batch whole and no partial batch (killed after %i commits)', async (killAfter) => {
    expect(existsSync(distIndex), `${distIndex} missing: build with npx tsc -p tsconfig.build.json`).toBe(true);
    const file = tmp.file(`killed-${killAfter}.db`);
    const committed = await ingestThenKill(file, killAfter);
    expect(committed.length).toBeGreaterThanOrEqual(killAfter);
    expect(committed).toEqual(committed.map((_, i) => i + 1));

    // Reopening recovers the WAL and passes quick_check.
    const store = SampleStore.open(file);
    const last = committed.at(-1)!;
    const total = store.count();
    // The batch in flight at the kill may have committed unreported, but whole.
    expect([last * BATCH, (last + 1) * BATCH]).toContain(total);
    const stored = total / BATCH;
    expect(store.countsByClass()).toEqual(new Map(Array.from({ length: 10 }, (_, l) => [l, stored * (BATCH / 10)])));
    expect(store.ingest([{ task: 0, label: 0, features: new Uint8Array(784) }]).batch).toBe(stored + 1);
    store.close();

    const db = new Database(file, { readonly: true });
    const perBatch = db.prepare('SELECT batch, count(*) AS n, min(task) AS lo, max(task) AS hi FROM samples WHERE batch <= ? GROUP BY batch ORDER BY batch').all(stored) as Array<{ batch: number; n: number; lo: number; hi: number }>;
    expect(perBatch).toEqual(Array.from({ length: stored }, (_, i) => ({ batch: i + 1, n: BATCH, lo: i + 1, hi: i + 1 })));
    // Every sample's bytes are the ones written for it.
    const rows = db.prepare('SELECT batch, features FROM samples WHERE batch <= ?').raw().all(stored) as Array<[number, Buffer]>;
    for (const [batch, features] of rows) {
      expect(features.length).toBe(784);
      expect(features[783]).toBe(batch & 0xff);
    }
    const dense = db.prepare('SELECT count(*) FROM (SELECT label FROM sample_rows GROUP BY label HAVING max(ord) <> count(*) - 1 OR min(ord) <> 0)').pluck().get();
    expect(dense).toBe(0);
    db.close();
  });
});
