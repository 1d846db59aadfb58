import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { EnergySensor, SensorEnergy } from './power-sensors.js';

/** One powercap zone, e.g. `intel-rapl:0` named `package-0`. */
export interface RaplZone {
  /** Directory name under `/sys/class/powercap`, e.g. `intel-rapl:0:1`. */
  readonly id: string;
  /** Contents of its `name` file (`package-0`, `core`, `dram`, `psys`, ...), else the id. */
  readonly name: string;
  readonly energyFile: string;
  /** Counter range from `max_energy_range_uj`; the counter wraps to 0 past it. `null` if unreadable. */
  readonly maxRangeUj: number | null;
  /** Whether the zone is part of the total (packages and DRAM; not sub-zones inside a package, not psys). */
  readonly inTotal: boolean;
}

export const RAPL_CLASS_DIR = path.join('sys', 'class', 'powercap');

function readNumber(file: string): number | null {
  try {
    const v = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Finds RAPL zones under `<sysfsRoot>/sys/class/powercap/intel-rapl:*` (the
 * Linux powercap interface, used for Intel and AMD RAPL alike) whose
 * `energy_uj` can be read. Since Linux 5.10 `energy_uj` is root-only; an
 * unreadable zone is skipped, and `reason` says why none were usable.
 */
export function findRaplZones(sysfsRoot: string): { zones: RaplZone[]; reason: string } {
  const dir = path.join(sysfsRoot, RAPL_CLASS_DIR);
  if (!existsSync(dir)) return { zones: [], reason: `${dir} does not exist` };
  const ids = readdirSync(dir)
    .filter((d) => /^intel-rapl(:\d+)+$/.test(d))
    .sort();
  if (ids.length === 0) return { zones: [], reason: `no intel-rapl:* zones in ${dir}` };
  const raw = ids.flatMap((id) => {
    const zoneDir = path.join(dir, id);
    const energyFile = path.join(zoneDir, 'energy_uj');
    if (readNumber(energyFile) === null) return [];
    const name = readText(path.join(zoneDir, 'name')) ?? id;
    return [{ id, name, energyFile, maxRangeUj: readNumber(path.join(zoneDir, 'max_energy_range_uj')) }];
  });
  if (raw.length === 0) return { zones: [], reason: `intel-rapl energy_uj files in ${dir} are not readable (root only since Linux 5.10)` };
  const isTop = (id: string) => id.split(':').length === 2;
  const counted = (z: { id: string; name: string }) => (isTop(z.id) && z.name.startsWith('package')) || z.name === 'dram';
  const anyCounted = raw.some(counted);
  const zones = raw.map((z) => ({ ...z, inTotal: anyCounted ? counted(z) : isTop(z.id) }));
  return { zones, reason: `${zones.length} RAPL zone(s) in ${dir}` };
}

/** Microjoules a counter advanced from `prev` to `cur`, allowing one wrap past `maxRangeUj`. */
export function raplDeltaUj(prev: number, cur: number, maxRangeUj: number | null): number {
  if (cur >= prev) return cur - prev;
  // Wrapped: the counter ran from prev up to its range, restarted at 0 and reached cur.
  // Without a known range, count only what is certain (cur).
  return maxRangeUj === null ? cur : maxRangeUj - prev + cur;
}

/**
 * Energy from RAPL counters. Each `poll()` adds every zone's counter delta,
 * so polling must happen at least once per counter wrap period (minutes at
 * server power; the meter polls every `sampleIntervalMs`).
 */
export class RaplSensor implements EnergySensor {
  readonly source = 'rapl' as const;
  readonly zones: readonly RaplZone[];
  #last = new Map<string, number>();
  #uj = new Map<string, number>();
  #beganMs = 0;
  #lastMs = 0;
  #samples = 0;

  constructor(zones: readonly RaplZone[]) {
    this.zones = zones;
  }

  get channels(): string[] {
    return this.zones.map((z) => `${z.id} (${z.name})`);
  }

  begin(nowMs: number): void {
    this.#uj.clear();
    this.#last.clear();
    for (const z of this.zones) {
      const v = readNumber(z.energyFile);
      if (v !== null) this.#last.set(z.id, v);
      this.#uj.set(z.id, 0);
    }
    this.#beganMs = nowMs;
    this.#lastMs = nowMs;
    this.#samples = 1;
  }

  poll(nowMs: number): void {
    for (const z of this.zones) {
      const cur = readNumber(z.energyFile);
      if (cur === null) continue;
      const prev = this.#last.get(z.id);
      if (prev !== undefined) this.#uj.set(z.id, (this.#uj.get(z.id) ?? 0) + raplDeltaUj(prev, cur, z.maxRangeUj));
      this.#last.set(z.id, cur);
    }
    this.#lastMs = nowMs;
    this.#samples += 1;
  }

  read(): SensorEnergy {
    const channels: Record<string, number> = {};
    let joules = 0;
    const summed: string[] = [];
    for (const z of this.zones) {
      const j = (this.#uj.get(z.id) ?? 0) / 1e6;
      channels[z.name === z.id ? z.id : `${z.id} (${z.name})`] = j;
      if (z.inTotal) {
        joules += j;
        summed.push(z.name === z.id ? z.id : `${z.id} (${z.name})`);
      }
    }
    return { joules, seconds: (this.#lastMs - this.#beganMs) / 1000, channels, summed, samples: this.#samples };
  }
}
