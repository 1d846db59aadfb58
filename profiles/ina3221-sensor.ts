import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { EnergySensor, SensorEnergy } from './power-sensors.js';

/**
 * One INA3221 channel (a power rail). Two sysfs layouts are supported:
 *
 * - `iio` (NVIDIA's L4T driver `ina3221x`, JetPack 4.x: Nano, TX1, TX2,
 *   Xavier): `/sys/bus/i2c/drivers/ina3221x/<bus-addr>/iio:device<N>/`
 *   with `rail_name_<k>` and `in_power<k>_input` in mW, k = 0..2.
 * - `hwmon` (mainline driver `ina3221`, JetPack 5+ / L4T 34+):
 *   `/sys/bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmon<N>/` with
 *   `in<k>_label`, `in<k>_input` (bus voltage, mV) and `curr<k>_input` (mA),
 *   k = 1..3; power = mV x mA / 1000 mW. Channels without a `curr<k>_input`
 *   (the "sum of shunt voltages" channel, in7) are skipped.
 */
export interface Ina3221Rail {
  /** The rail's label (`POM_5V_IN`, `VDD_IN`, `VDD_CPU_GPU_CV`, ...), made unique with `@<bus-addr>` if repeated. */
  readonly name: string;
  readonly layout: 'iio' | 'hwmon';
  /** `iio`: the in_power file (mW). `hwmon`: the voltage file (mV). */
  readonly file: string;
  /** `hwmon` only: the current file (mA). */
  readonly currentFile?: string;
}

export const INA3221_IIO_DIR = path.join('sys', 'bus', 'i2c', 'drivers', 'ina3221x');
export const INA3221_HWMON_DIR = path.join('sys', 'bus', 'i2c', 'drivers', 'ina3221');

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function list(dir: string, pattern: RegExp): string[] {
  try {
    return readdirSync(dir).filter((d) => pattern.test(d)).sort();
  } catch {
    return [];
  }
}

function iioRails(root: string): Array<Ina3221Rail & { device: string }> {
  const base = path.join(root, INA3221_IIO_DIR);
  return list(base, /^\d+-[0-9a-f]+$/i).flatMap((device) =>
    list(path.join(base, device), /^iio:device\d+$/).flatMap((iio) => {
      const dir = path.join(base, device, iio);
      return list(dir, /^in_power\d+_input$/).flatMap((f) => {
        const k = /^in_power(\d+)_input$/.exec(f)![1]!;
        const label = read(path.join(dir, `rail_name_${k}`)) ?? `${device}/in_power${k}`;
        return [{ name: label, layout: 'iio' as const, file: path.join(dir, f), device }];
      });
    }),
  );
}

function hwmonRails(root: string): Array<Ina3221Rail & { device: string }> {
  const base = path.join(root, INA3221_HWMON_DIR);
  return list(base, /^\d+-[0-9a-f]+$/i).flatMap((device) =>
    list(path.join(base, device, 'hwmon'), /^hwmon\d+$/).flatMap((hw) => {
      const dir = path.join(base, device, 'hwmon', hw);
      return list(dir, /^curr\d+_input$/).flatMap((f) => {
        const k = /^curr(\d+)_input$/.exec(f)![1]!;
        const voltage = path.join(dir, `in${k}_input`);
        if (!existsSync(voltage)) return [];
        const label = read(path.join(dir, `in${k}_label`)) ?? `${device}/in${k}`;
        return [{ name: label, layout: 'hwmon' as const, file: voltage, currentFile: path.join(dir, f), device }];
      });
    }),
  );
}

/** Finds INA3221 rails under `sysfsRoot` in either layout (see `Ina3221Rail`). */
export function findIna3221Rails(sysfsRoot: string): { rails: Ina3221Rail[]; reason: string } {
  const found = [...iioRails(sysfsRoot), ...hwmonRails(sysfsRoot)].filter((r) => readRailMilliwatts(r) !== null);
  if (found.length === 0) {
    return {
      rails: [],
      reason: `no readable INA3221 rails under ${path.join(sysfsRoot, INA3221_IIO_DIR)} or ${path.join(sysfsRoot, INA3221_HWMON_DIR)}`,
    };
  }
  const counts = new Map<string, number>();
  for (const r of found) counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
  const rails = found.map(({ device, ...r }) => ((counts.get(r.name) ?? 0) > 1 ? { ...r, name: `${r.name}@${device}` } : r));
  return { rails, reason: `${rails.length} INA3221 rail(s): ${rails.map((r) => r.name).join(', ')}` };
}

/** Instantaneous power of a rail in mW, or null if it cannot be read. */
export function readRailMilliwatts(rail: Ina3221Rail): number | null {
  const first = readNumber(rail.file);
  if (first === null || rail.layout === 'iio') return first;
  const mA = rail.currentFile === undefined ? null : readNumber(rail.currentFile);
  return mA === null ? null : (first * mA) / 1000;
}

function readNumber(file: string): number | null {
  const text = read(file);
  if (text === null || text === '') return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

/**
 * The rails whose power makes the total: `wanted` when given, else the input
 * rails (label ending in `_IN`: `POM_5V_IN` on a Nano, `VDD_IN` on TX2 / Xavier
 * NX), which already include the others; when there is none (AGX Xavier
 * has only parallel rails), all of them.
 */
export function totalRails(rails: readonly Ina3221Rail[], wanted?: readonly string[]): string[] {
  if (wanted !== undefined && wanted.length > 0) return rails.filter((r) => wanted.includes(r.name)).map((r) => r.name);
  const inputs = rails.filter((r) => /(^|_)IN(@.*)?$/i.test(r.name)).map((r) => r.name);
  return inputs.length > 0 ? inputs : rails.map((r) => r.name);
}

/**
 * Energy from INA3221 power readings, integrated with the trapezoid rule
 * between polls: the more often it is polled, the closer it follows the load.
 */
export class Ina3221Sensor implements EnergySensor {
  readonly source = 'ina3221' as const;
  readonly rails: readonly Ina3221Rail[];
  /** Names of the rails summed into `joules`. */
  readonly summed: readonly string[];
  #lastMw = new Map<string, number>();
  #joules = new Map<string, number>();
  #beganMs = 0;
  #lastMs = 0;
  #samples = 0;

  constructor(rails: readonly Ina3221Rail[], wanted?: readonly string[]) {
    this.rails = rails;
    this.summed = totalRails(rails, wanted);
  }

  get channels(): string[] {
    return this.rails.map((r) => r.name);
  }

  begin(nowMs: number): void {
    this.#joules.clear();
    this.#lastMw.clear();
    for (const r of this.rails) {
      const mw = readRailMilliwatts(r);
      if (mw !== null) this.#lastMw.set(r.name, mw);
      this.#joules.set(r.name, 0);
    }
    this.#beganMs = nowMs;
    this.#lastMs = nowMs;
    this.#samples = 1;
  }

  poll(nowMs: number): void {
    const dt = (nowMs - this.#lastMs) / 1000;
    for (const r of this.rails) {
      const mw = readRailMilliwatts(r);
      if (mw === null) continue;
      const prev = this.#lastMw.get(r.name) ?? mw;
      if (dt > 0) this.#joules.set(r.name, (this.#joules.get(r.name) ?? 0) + ((prev + mw) / 2 / 1000) * dt);
      this.#lastMw.set(r.name, mw);
    }
    this.#lastMs = nowMs;
    this.#samples += 1;
  }

  read(): SensorEnergy {
    const channels: Record<string, number> = {};
    let joules = 0;
    for (const r of this.rails) {
      const j = this.#joules.get(r.name) ?? 0;
      channels[r.name] = j;
      if (this.summed.includes(r.name)) joules += j;
    }
    return { joules, seconds: (this.#lastMs - this.#beganMs) / 1000, channels, summed: [...this.summed], samples: this.#samples };
  }
}
