import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import { SampleStore } from '../../storage-tier/sample-store.js';
import { samplesOfClasses } from '../storage-tier/helpers.js';
import { strata } from './run-strata.js';

const dir = mkdtempSync(path.join(tmpdir(), 'strata-fail-fast-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The code and message of the one line a failing `strata` prints. */
function failure(r: { code: number | null; stderr: string }): { exit: number | null; code: string; line: string } {
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  const m = /^strata: (STRATA_ERR_[A-Z0-9_]+): /.exec(lines[0]!);
  expect(m, lines[0]).not.toBeNull();
  return { exit: r.code, code: m![1]!, line: lines[0]! };
}

function textFile(): string {
  const file = path.join(dir, `${made++}-notes.txt`);
  writeFileSync(file, 'not a database at all\n'.repeat(300));
  return file;
}

let made = 0;
/** A fresh coordinator database (each call its own file). */
function coordinatorDb(name: string, params = 10): string {
  const file = path.join(dir, `${made++}-${name}`);
  const store = CoordinatorStore.open(file);
  store.saveInitialModel(new Float32Array(params).fill(0.25), '0123456789abcdef', 0);
  store.close();
  return file;
}

function corruptCoordinatorDb(): string {
  const file = coordinatorDb('corrupt.db', 2_000_000);
  const size = statSync(file).size;
  expect(size).toBeGreaterThan(4_000_000);
  // Scribble over pages in the middle, header intact.
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(4 * 65536, 0xa5), 0, 4 * 65536, Math.floor(size / 2 / 65536) * 65536);
  closeSync(fd);
  return file;
}

function corruptSampleStore(): string {
  const file = path.join(dir, `${made++}-corrupt-samples.db`);
  const store = SampleStore.open(file);
  for (let task = 0; task < 5; task++) store.ingest(samplesOfClasses(task, [2 * task, 2 * task + 1], 300));
  store.close();
  const size = statSync(file).size;
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(16 * 4096, 0xa5), 0, 16 * 4096, Math.floor(size / 2 / 4096) * 4096);
  closeSync(fd);
  return file;
}

function newerCoordinatorDb(): string {
  const file = coordinatorDb('newer.db');
  const db = new Database(file);
  db.pragma('user_version = 99');
  db.close();
  return file;
}

function sampleStore(): string {
  const file = path.join(dir, `${made++}-samples.db`);
  SampleStore.open(file).close();
  return file;
}

const coordinatorArgs = (db: string): string[] => ['coordinator', '--db', db, '--model', 'flat:10', '--port', '0', '--rounds', '1', '--out', path.join(dir, 'out')];

describe('bad store files fail fast with a code, naming the file', () => {
  const cases: Array<[string, () => string, string]> = [
    ['a text file', textFile, 'STRATA_ERR_STORE_NOT_STRATA'],
    ['a corrupt database', corruptCoordinatorDb, 'STRATA_ERR_STORE_CORRUPT'],
    ['a database from a newer Strata', newerCoordinatorDb, 'STRATA_ERR_STORE_TOO_NEW'],
    ['a sample store', sampleStore, 'STRATA_ERR_STORE_WRONG_KIND'],
  ];

  it.each(cases)('CoordinatorStore.open refuses %s', (_, make, code) => {
    const file = make();
    let caught: unknown;
    try {
      CoordinatorStore.open(file).close();
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ name: 'StrataError', code, details: { file } });
  });

  it.each(cases)('strata coordinator --db refuses %s: exit 1, one line with the code and the file', (_, make, code) => {
    const file = make();
    const f = failure(strata(...coordinatorArgs(file)));
    expect(f).toMatchObject({ exit: 1, code });
    expect(f.line).toContain(file);
  });

  it('the sample store refuses a coordinator database', () => {
    const file = coordinatorDb('coordinator-for-agent.db');
    let caught: unknown;
    try {
      SampleStore.open(file).close();
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'STRATA_ERR_STORE_WRONG_KIND', details: { file, expected: 'sample store', actual: 'coordinator database' } });
  });
});

describe('strata agent checks its inputs before it connects', () => {
  // Nothing listens here: an agent that got as far as connecting would retry forever, not exit.
  const agentArgs = (extra: string[]): string[] => [
    'agent', '--url', 'ws://127.0.0.1:9', '--agent-id', 'ff-1', '--dataset', 'synthetic', '--backend', 'cpu', '--out', path.join(dir, 'agent-out'), ...extra,
  ];

  it.each([
    ['a corrupt store', corruptSampleStore, 'STRATA_ERR_STORE_CORRUPT'],
    ['a text file as its store', textFile, 'STRATA_ERR_STORE_NOT_STRATA'],
    ['a coordinator database as its store', () => coordinatorDb('as-agent-store.db'), 'STRATA_ERR_STORE_WRONG_KIND'],
  ])('refuses %s: exit 1, one line with the code and the file', (_, make, code) => {
    const file = make();
    const r = strata(...agentArgs(['--token', 't', '--db', file]));
    const f = failure(r);
    expect(f).toMatchObject({ exit: 1, code });
    expect(f.line).toContain(file);
    expect(r.stdout).toBe(''); // nothing printed: it never got as far as connecting
  });

  it('refuses an unknown profile, missing data and a missing token before connecting', () => {
    const db = path.join(dir, 'fine.db');
    const profile = strata(...agentArgs(['--token', 't', '--db', db, '--profile', 'no-such-device']));
    expect(failure(profile)).toMatchObject({ exit: 1, code: 'STRATA_ERR_PROFILE_UNKNOWN' });
    expect(profile.stdout).toBe('');
    const missing = path.join(dir, 'no-such-idx');
    const data = strata(...agentArgs(['--token', 't', '--db', db]).map((a) => (a === 'synthetic' ? `idx:${missing}` : a)));
    const d = failure(data);
    expect(d).toMatchObject({ exit: 1, code: 'STRATA_ERR_DATASET_MISSING' });
    expect(d.line).toContain(missing);
    const tokenFile = path.join(dir, 'no-such-token');
    const token = failure(strata(...agentArgs(['--token-file', tokenFile, '--db', db])));
    expect(token).toMatchObject({ exit: 2, code: 'STRATA_ERR_BAD_FLAG' });
    expect(token.line).toContain(tokenFile);
  });
});
