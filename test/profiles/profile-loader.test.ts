import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStrataError, StrataError } from '../../common/strata-error.js';
import {
  cpuShareFor,
  formatPriceTable,
  formatProfileTable,
  gflopsFor,
  priceList,
  REFERENCE_HOST_GFLOPS,
  listProfiles,
  loadProfile,
  missingSources,
  PROFILE_NUMBER_FIELDS,
  profileNames,
  profileNumber,
  profilesDir,
} from '../../profiles/index.js';

const REQUIRED = [
  'reference-host',
  'jetson-nano-5w',
  'jetson-nano-10w',
  'jetson-tx2',
  'jetson-xavier-nx',
  'raspberry-pi-4',
  'phone-midrange',
  'phone-lowend',
];

const tmp = mkdtempSync(path.join(tmpdir(), 'strata-profiles-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function catchError(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StrataError) return err;
    throw err;
  }
  throw new Error('expected a StrataError');
}

function nanoJson(): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(profilesDir(), 'jetson-nano-5w.json'), 'utf8')) as Record<string, unknown>;
}

describe('shipped profiles', () => {
  it('finds the devices folder at the package root', () => {
    expect(profilesDir()).toBe(path.resolve(import.meta.dirname, '../../profiles/devices'));
  });

  it('ships every required device', () => {
    expect(profileNames()).toEqual(expect.arrayContaining(REQUIRED));
  });

  it('all load, validate, and cite a source for every number', () => {
    const profiles = listProfiles();
    expect(profiles.map((p) => p.name)).toEqual(expect.arrayContaining(REQUIRED));
    expect(profiles[0]?.name).toBe('reference-host');
    for (const p of profiles) {
      expect(missingSources(p), p.name).toEqual([]);
      expect(p.description.length).toBeGreaterThan(10);
      for (const f of PROFILE_NUMBER_FIELDS) expect(Number.isFinite(profileNumber(p, f)), `${p.name} ${f}`).toBe(true);
      expect(p.compute.cpuShare).toBe(cpuShareFor(p.compute.speedFactor));
      expect(p.compute.cpuShare).toBeGreaterThan(0);
      expect(p.compute.cpuShare).toBeLessThanOrEqual(1);
      expect(Object.isFrozen(p.power)).toBe(true);
    }
  });

  it('orders the devices sensibly', () => {
    const byName = new Map(listProfiles().map((p) => [p.name, p]));
    const get = (n: string) => byName.get(n)!;
    expect(get('reference-host').compute.speedFactor).toBe(1);
    expect(get('jetson-nano-5w').compute.speedFactor).toBeLessThan(get('jetson-nano-10w').compute.speedFactor);
    expect(get('phone-lowend').compute.speedFactor).toBeLessThan(get('phone-midrange').compute.speedFactor);
    expect(get('phone-lowend').network.upMbps).toBeLessThan(get('phone-midrange').network.upMbps);
    for (const p of byName.values()) if (p.name !== 'reference-host') expect(p.compute.speedFactor).toBeLessThan(1);
  });

  it('formats a table with a header and one row per profile', () => {
    const profiles = listProfiles();
    const lines = formatProfileTable(profiles);
    expect(lines).toHaveLength(profiles.length + 1);
    expect(lines[0]).toMatch(/^name\s+speed\s+cpu share\s+RAM MB/);
    const nano = lines.find((l) => l.startsWith('jetson-nano-5w'));
    expect(nano).toMatch(/0\.12x/);
    expect(nano).toMatch(/80\/25/);
  });
});

describe('the price list', () => {
  it('reference-host states the reference FLOP/s with a citation; other profiles derive theirs from the speed factor', () => {
    const byName = new Map(listProfiles().map((p) => [p.name, p]));
    const ref = byName.get('reference-host')!;
    expect(ref.compute.gflops).toBe(REFERENCE_HOST_GFLOPS);
    expect(ref.sources['compute.gflops']).toMatch(/measured/);
    const nano = byName.get('jetson-nano-5w')!;
    expect(nano.compute.gflops).toBeCloseTo(0.12 * REFERENCE_HOST_GFLOPS, 9);
    expect(gflopsFor(0.5)).toBeCloseTo(0.5 * REFERENCE_HOST_GFLOPS, 9);
  });

  it('prices compute per FLOP and storage and radio per byte and per request, from the profile fields', () => {
    const nano = loadProfile('jetson-nano-5w');
    const l = priceList(nano);
    const flops = nano.compute.gflops * 1e9;
    expect(l.compute.flopsPerSecond).toBeCloseTo(flops, 0);
    expect(l.compute.joulesPerFlop).toBeCloseTo(nano.power.computeW / flops, 20);
    expect(l.compute.joulesPerFlopWithIdle).toBeCloseTo((nano.power.computeW + nano.power.idleW) / flops, 20);
    // 0.5 W storage at 80 MB/s read, 25 MB/s write, 0.67 ms a request.
    expect(l.storage.readJoulesPerByte).toBeCloseTo(0.5 / 80e6, 18);
    expect(l.storage.writeJoulesPerByte).toBeCloseTo(0.5 / 25e6, 18);
    expect(l.storage.latencySeconds).toBeCloseTo(0.00067, 12);
    expect(l.storage.joulesPerRequest).toBeCloseTo(0.5 * 0.00067, 12);
    // 1 W transmit over 20 Mbit/s up, 0.5 W receive over 50 Mbit/s down, 30 ms round trips heard at 0.5 W.
    expect(l.network.upJoulesPerByte).toBeCloseTo((1 * 8) / 20e6, 15);
    expect(l.network.downJoulesPerByte).toBeCloseTo((0.5 * 8) / 50e6, 15);
    expect(l.network.joulesPerRoundTrip).toBeCloseTo(0.5 * 0.03, 12);
    expect(l.idleW).toBe(1.25);
    const lines = formatPriceTable(listProfiles());
    expect(lines[0]).toMatch(/^name\s+GFLOP\/s\s+J\/GFLOP/);
    expect(lines.find((x) => x.startsWith('jetson-nano-5w'))).toBeDefined();
  });

  it('a profile file may state its own GFLOP/s', () => {
    const json = nanoJson();
    (json.compute as Record<string, unknown>).gflops = 3.5;
    const file = path.join(tmp, 'jetson-nano-5w-measured.json');
    writeFileSync(file, JSON.stringify({ ...json, name: 'jetson-nano-5w-measured' }));
    expect(loadProfile(file).compute.gflops).toBe(3.5);
  });
});

describe('loadProfile errors', () => {
  it('an unknown name is STRATA_ERR_PROFILE_UNKNOWN listing the known names', () => {
    const err = catchError(() => loadProfile('jetson-nano-3w'));
    expect(err.code).toBe('STRATA_ERR_PROFILE_UNKNOWN');
    expect(err.message).toContain('jetson-nano-3w');
    expect(err.message).toContain('jetson-nano-5w');
    expect(err.details.known).toEqual(expect.arrayContaining(REQUIRED));
  });

  it('a missing file is STRATA_ERR_PROFILE_UNKNOWN', () => {
    const err = catchError(() => loadProfile(path.join(tmp, 'nope.json')));
    expect(err.code).toBe('STRATA_ERR_PROFILE_UNKNOWN');
  });

  it('a bad field is STRATA_ERR_PROFILE_INVALID naming the field', () => {
    const bad = nanoJson();
    (bad.storage as Record<string, unknown>).readMBps = -5;
    const file = path.join(tmp, 'bad-field.json');
    writeFileSync(file, JSON.stringify(bad));
    const err = catchError(() => loadProfile(file));
    expect(err.code).toBe('STRATA_ERR_PROFILE_INVALID');
    expect(err.details.field).toBe('storage.readMBps');
    expect(err.message).toContain('storage.readMBps');
  });

  it('a missing field, a misspelt field and a wrong type are each named', () => {
    const cases: Array<[string, (j: Record<string, unknown>) => void]> = [
      ['power.idleW', (j) => delete (j.power as Record<string, unknown>).idleW],
      ['network.rtt', (j) => ((j.network as Record<string, unknown>).rtt = 3)],
      ['availability.dropoutRate', (j) => ((j.availability as Record<string, unknown>).dropoutRate = 'often')],
      ['sources.power.idleWatts', (j) => ((j.sources as Record<string, unknown>)['power.idleWatts'] = 'typo')],
      ['compute.cpuShare', (j) => ((j.compute as Record<string, unknown>).cpuShare = 0.9)],
    ];
    for (const [field, mutate] of cases) {
      const j = nanoJson();
      mutate(j);
      const file = path.join(tmp, `case-${field}.json`);
      writeFileSync(file, JSON.stringify(j));
      const err = catchError(() => loadProfile(file));
      expect(err.code, field).toBe('STRATA_ERR_PROFILE_INVALID');
      expect(err.details.field, field).toBe(field);
    }
  });

  it('broken JSON is STRATA_ERR_PROFILE_INVALID', () => {
    const file = path.join(tmp, 'broken.json');
    writeFileSync(file, '{ "name": ');
    expect(isStrataError(catchError(() => loadProfile(file)), 'STRATA_ERR_PROFILE_INVALID')).toBe(true);
  });

  it('a shipped file whose name field differs from its file name is invalid', () => {
    const dir = path.join(tmp, 'devices');
    rmSync(dir, { recursive: true, force: true });
    const j = nanoJson();
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'other-name.json'), JSON.stringify(j));
    const err = catchError(() => loadProfile('other-name', { dir }));
    expect(err.code).toBe('STRATA_ERR_PROFILE_INVALID');
    expect(err.details.field).toBe('name');
  });
});

describe('user profiles from a file', () => {
  it('loads a user JSON file by path, deriving cpuShare and allowing partial sources', () => {
    const user = {
      name: 'my-board',
      description: 'A custom board measured in the lab.',
      compute: { speedFactor: 0.4 },
      memory: { learningRamMB: 512 },
      storage: { readMBps: 100, writeMBps: 50, latencyMs: 0.5 },
      network: { upMbps: 5, downMbps: 20, rttMs: 50 },
      power: { idleW: 1, computeW: 3, storageW: 0.2, radioTxW: 0.8, radioRxW: 0.4 },
      availability: { dropoutRate: 0.1 },
      sources: { 'compute.speedFactor': 'measured in our lab' },
    };
    const file = path.join(tmp, 'my-board.json');
    writeFileSync(file, JSON.stringify(user));
    const p = loadProfile(file);
    expect(p.name).toBe('my-board');
    expect(p.compute.cpuShare).toBe(0.4);
    expect(p.power.computeW).toBe(3);
    expect(missingSources(p)).toContain('power.idleW');
    // A relative path works too.
    const rel = path.relative(process.cwd(), file);
    expect(loadProfile(rel.startsWith('.') ? rel : `./${rel}`).name).toBe('my-board');
  });
});
