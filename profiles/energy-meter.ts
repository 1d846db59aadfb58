import { StrataError } from '../common/strata-error.js';
import { DeviceClock, type DeviceClockOptions, type DeviceTime } from './device-clock.js';
import type { DeviceProfile, PowerModel } from './device-profile.js';
import {
  detectPowerSensor,
  type EnergySensor,
  type EnergySource,
  type PowerSensorOptions,
  type SensorEnergy,
  type SensorSource,
} from './power-sensors.js';

/** Modelled joules per component. */
export interface ComponentJoules {
  /** `computeW x compute device seconds` (active delta above idle). */
  readonly compute: number;
  /** `storageW x (read + write device seconds)`. */
  readonly storage: number;
  /** `radioTxW x upload seconds + radioRxW x (download + round-trip seconds)`: the radio listens while it waits. */
  readonly radio: number;
  /** `idleW x all device seconds`: the floor the device draws whatever it does. */
  readonly idle: number;
  readonly total: number;
}

/** Integrates a profile's power model over a clock's device time (and, through it, bytes moved). */
export function modelEnergy(time: DeviceTime, power: PowerModel): ComponentJoules {
  const compute = power.computeW * time.compute.deviceSeconds;
  const storage = power.storageW * (time.storage.readSeconds + time.storage.writeSeconds);
  const radio = power.radioTxW * time.network.upSeconds + power.radioRxW * (time.network.downSeconds + time.network.rttSeconds);
  const idle = power.idleW * time.deviceSeconds;
  return Object.freeze({ compute, storage, radio, idle, total: compute + storage + radio + idle });
}

export interface EnergyMeterOptions extends PowerSensorOptions {
  /** How often a running meter polls its sensor, ms. Default 100; 0 polls only on `poll()`, `report()` and `stop()`. */
  sampleIntervalMs?: number;
  /**
   * Which figure is the report's `totalJoules`: `model` (default: the profiled
   * device is usually not the machine this runs on) or `measured` (running on
   * the profiled device itself; falls back to the model without a sensor).
   */
  total?: 'model' | 'measured';
  /** Options for the clock the meter creates when none is given. */
  clock?: DeviceClockOptions;
  /** Monotonic clock in ms. Default `performance.now`. Tests inject one. */
  now?: () => number;
}

export interface CompiledEnergyMeterOptions {
  readonly sampleIntervalMs: number;
  readonly total: 'model' | 'measured';
  readonly now: () => number;
}

export function compileEnergyMeterOptions(options: EnergyMeterOptions = {}): CompiledEnergyMeterOptions {
  const sampleIntervalMs = options.sampleIntervalMs ?? 100;
  if (!Number.isFinite(sampleIntervalMs) || sampleIntervalMs < 0) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `energy meter option 'sampleIntervalMs' must be >= 0 (got ${String(sampleIntervalMs)})`, {
      option: 'sampleIntervalMs',
    });
  }
  const total = options.total ?? 'model';
  if (total !== 'model' && total !== 'measured') {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `energy meter option 'total' must be 'model' or 'measured' (got ${String(total)})`, {
      option: 'total',
    });
  }
  const now = options.now ?? (() => performance.now());
  return Object.freeze({ sampleIntervalMs, total, now });
}

/** One energy figure and where it came from. */
export interface EnergyFigure {
  readonly joules: number;
  readonly source: EnergySource;
}

export interface MeasuredEnergy extends SensorEnergy {
  readonly source: SensorSource;
}

export interface EnergyReport {
  readonly profile: string;
  readonly hostSeconds: number;
  readonly deviceSeconds: number;
  /** Per component; always from the model (a sensor cannot split by component). */
  readonly components: {
    readonly compute: EnergyFigure;
    readonly storage: EnergyFigure;
    readonly radio: EnergyFigure;
    readonly idle: EnergyFigure;
  };
  /** The model's total for the profiled device. */
  readonly modelledJoules: number;
  /** What a real sensor measured on this machine over the meter's running time; null without one. */
  readonly measured: MeasuredEnergy | null;
  /** The headline figure (see the `total` option). */
  readonly total: EnergyFigure;
  /** How sensors were looked for. */
  readonly sensorNotes: readonly string[];
}

export type EnergyMeterState = 'ready' | 'running' | 'stopped';

/**
 * Joules per component for a profiled device, from the power model
 * integrated over a `DeviceClock`'s device time; plus, where this machine has
 * RAPL or INA3221 sensors, what they measured while the meter ran.
 * `start()` begins a sensor window and its polling timer; `stop()` ends it.
 * The model side needs neither: account work on `meter.clock` at any time.
 */
export class EnergyMeter {
  readonly profile: DeviceProfile;
  readonly clock: DeviceClock;
  readonly options: CompiledEnergyMeterOptions;
  readonly sensor: EnergySensor | null;
  readonly sensorNotes: readonly string[];
  #state: EnergyMeterState = 'ready';
  #timer: NodeJS.Timeout | undefined;
  #measured: SensorEnergy[] = [];
  #pollErrors = 0;

  constructor(profile: DeviceProfile, options: EnergyMeterOptions = {}, clock?: DeviceClock) {
    this.profile = profile;
    this.options = compileEnergyMeterOptions(options);
    const detection = detectPowerSensor(options);
    this.sensor = detection.sensor;
    this.sensorNotes = Object.freeze([...detection.notes]);
    this.clock = clock ?? new DeviceClock(profile, options.clock);
  }

  get state(): EnergyMeterState {
    return this.#state;
  }

  /** Sensor readings that failed and were skipped. */
  get pollErrors(): number {
    return this.#pollErrors;
  }

  /** Starts (or restarts after `stop()`) a sensor window. */
  start(): void {
    if (this.#state === 'running') throw new StrataError('STRATA_ERR_STATE', 'energy meter is already running', { state: this.#state });
    this.#state = 'running';
    if (this.sensor === null) return;
    this.sensor.begin(this.options.now());
    if (this.options.sampleIntervalMs > 0) {
      this.#timer = setInterval(() => this.poll(), this.options.sampleIntervalMs);
      this.#timer.unref();
    }
  }

  /** Takes one sensor reading now (no-op without a sensor or when not running). */
  poll(): void {
    if (this.#state !== 'running' || this.sensor === null) return;
    try {
      this.sensor.poll(this.options.now());
    } catch {
      this.#pollErrors += 1;
    }
  }

  /** Ends the sensor window and returns the report. */
  stop(): EnergyReport {
    if (this.#state !== 'running') throw new StrataError('STRATA_ERR_STATE', `energy meter is not running (state ${this.#state})`, { state: this.#state });
    this.poll();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.sensor !== null) this.#measured.push(this.sensor.read());
    this.#state = 'stopped';
    return this.report();
  }

  /** The report so far; while running, the sensor is read up to now. */
  report(): EnergyReport {
    const time = this.clock.snapshot();
    const model = modelEnergy(time, this.profile.power);
    const measured = this.#measuredSoFar();
    const fromModel = (joules: number): EnergyFigure => ({ joules, source: 'model' });
    const total: EnergyFigure =
      this.options.total === 'measured' && measured !== null ? { joules: measured.joules, source: measured.source } : fromModel(model.total);
    return {
      profile: this.profile.name,
      hostSeconds: time.hostSeconds,
      deviceSeconds: time.deviceSeconds,
      components: {
        compute: fromModel(model.compute),
        storage: fromModel(model.storage),
        radio: fromModel(model.radio),
        idle: fromModel(model.idle),
      },
      modelledJoules: model.total,
      measured,
      total,
      sensorNotes: this.sensorNotes,
    };
  }

  #measuredSoFar(): MeasuredEnergy | null {
    if (this.sensor === null) return null;
    const windows = [...this.#measured];
    if (this.#state === 'running') {
      this.poll();
      windows.push(this.sensor.read());
    }
    const channels: Record<string, number> = {};
    let joules = 0;
    let seconds = 0;
    let samples = 0;
    for (const w of windows) {
      joules += w.joules;
      seconds += w.seconds;
      samples += w.samples;
      for (const [k, v] of Object.entries(w.channels)) channels[k] = (channels[k] ?? 0) + v;
    }
    const summed = windows[0]?.summed ?? [];
    return { source: this.sensor.source, joules, seconds, channels, summed, samples };
  }
}
