import path from 'node:path';
import { StrataError } from '../common/strata-error.js';
import { findIna3221Rails, Ina3221Sensor } from './ina3221-sensor.js';
import { findRaplZones, RaplSensor } from './rapl-sensor.js';

/** Where an energy figure came from. */
export type EnergySource = 'model' | 'rapl' | 'ina3221';
export type SensorSource = Exclude<EnergySource, 'model'>;

/** Energy a sensor measured over its window. */
export interface SensorEnergy {
  /** Joules of the channels in `summed`. */
  readonly joules: number;
  /** Wall seconds from `begin()` to the last `poll()`. */
  readonly seconds: number;
  /** Joules per channel (RAPL zone or INA3221 rail), summed or not. */
  readonly channels: Readonly<Record<string, number>>;
  /** Channels that make up `joules` (the others overlap them). */
  readonly summed: readonly string[];
  /** Readings taken, `begin()` included. */
  readonly samples: number;
}

/** A real power sensor read through sysfs. Synchronous: sysfs reads are tiny. */
export interface EnergySensor {
  readonly source: SensorSource;
  /** What it reads (zones or rails), for reports. */
  readonly channels: readonly string[];
  /** Starts a new measurement window at `nowMs` (a monotonic ms clock). */
  begin(nowMs: number): void;
  /** Takes a reading at `nowMs` and accumulates energy since the last one. */
  poll(nowMs: number): void;
  /** Energy since `begin()`, up to the last `poll()`. */
  read(): SensorEnergy;
}

export type SensorChoice = 'auto' | 'rapl' | 'ina3221' | 'off';

export interface PowerSensorOptions {
  /**
   * Which sensor to use. `auto` (default) tries INA3221 (whole-board rails on
   * a Jetson) then RAPL (x86 package counters) and uses the model alone when
   * neither is readable; `rapl` / `ina3221` demand that sensor; `off` never reads one.
   */
  sensor?: SensorChoice;
  /** Directory the `sys/...` paths are under. Default `/`; tests point it at a fake tree. */
  sysfsRoot?: string;
  /**
   * INA3221 rails summed into the measured total. Default: the input rails
   * (label ending in `_IN`), else all rails.
   */
  rails?: readonly string[];
}

export interface CompiledPowerSensorOptions {
  readonly sensor: SensorChoice;
  readonly sysfsRoot: string;
  readonly rails: readonly string[] | undefined;
}

const SENSOR_CHOICES: readonly SensorChoice[] = ['auto', 'rapl', 'ina3221', 'off'];

export function compilePowerSensorOptions(options: PowerSensorOptions = {}): CompiledPowerSensorOptions {
  const sensor = options.sensor ?? 'auto';
  if (!SENSOR_CHOICES.includes(sensor)) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `power sensor option 'sensor' must be one of ${SENSOR_CHOICES.join(', ')} (got ${String(sensor)})`, {
      option: 'sensor',
      value: sensor,
    });
  }
  const sysfsRoot = options.sysfsRoot ?? '/';
  if (typeof sysfsRoot !== 'string' || sysfsRoot === '') {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `power sensor option 'sysfsRoot' must be a directory path`, { option: 'sysfsRoot' });
  }
  const rails = options.rails;
  if (rails !== undefined && (!Array.isArray(rails) || rails.some((r) => typeof r !== 'string' || r === ''))) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `power sensor option 'rails' must be a list of rail names`, { option: 'rails' });
  }
  return Object.freeze({ sensor, sysfsRoot: path.resolve(sysfsRoot), rails: rails === undefined ? undefined : Object.freeze([...rails]) });
}

export interface SensorDetection {
  /** The sensor to read, or null: energy comes from the model alone. */
  readonly sensor: EnergySensor | null;
  /** What was looked for and what was found, one line per sensor kind tried. */
  readonly notes: readonly string[];
}

/**
 * Looks for real power sensors under the sysfs root.
 * @throws StrataError `STRATA_ERR_SENSOR_UNAVAILABLE` when a specific sensor
 *   was asked for and is not there.
 */
export function detectPowerSensor(options: PowerSensorOptions = {}): SensorDetection {
  const o = compilePowerSensorOptions(options);
  if (o.sensor === 'off') return { sensor: null, notes: ['sensors off: energy from the model'] };
  const notes: string[] = [];
  const tryIna = (): EnergySensor | null => {
    const { rails, reason } = findIna3221Rails(o.sysfsRoot);
    notes.push(`ina3221: ${reason}`);
    return rails.length > 0 ? new Ina3221Sensor(rails, o.rails) : null;
  };
  const tryRapl = (): EnergySensor | null => {
    const { zones, reason } = findRaplZones(o.sysfsRoot);
    notes.push(`rapl: ${reason}`);
    return zones.length > 0 ? new RaplSensor(zones) : null;
  };
  const order = o.sensor === 'auto' ? [tryIna, tryRapl] : o.sensor === 'rapl' ? [tryRapl] : [tryIna];
  for (const attempt of order) {
    const sensor = attempt();
    if (sensor !== null) return { sensor, notes };
  }
  if (o.sensor !== 'auto') {
    throw new StrataError('STRATA_ERR_SENSOR_UNAVAILABLE', `power sensor '${o.sensor}' not available: ${notes.join('; ')}`, {
      option: 'sensor',
      sensor: o.sensor,
    });
  }
  notes.push('no power sensor: energy from the model');
  return { sensor: null, notes };
}

export { findIna3221Rails, Ina3221Sensor, readRailMilliwatts, totalRails, type Ina3221Rail } from './ina3221-sensor.js';
export { findRaplZones, RaplSensor, raplDeltaUj, type RaplZone } from './rapl-sensor.js';
