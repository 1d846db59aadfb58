/**
 * Device time and energy of a continual-learning run on a profiled device.
 * Every piece of work the device would do is accounted here: training
 * compute (host seconds measured here, scaled by the profile's speed factor),
 * the background writer's stream writes and the swap reads (at the profile's
 * storage bandwidth and per-request latency), and Miro's profiling trials.
 * Profiling is accounted in the run's totals and, separately, on its own clock.
 */
import { readFileSync } from 'node:fs';
import { DeviceClock, type StorageWork } from '../profiles/device-clock.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { EnergyMeter, modelEnergy, type ComponentJoules, type MeasuredEnergy } from '../profiles/energy-meter.js';
import type { EnergySource, PowerSensorOptions } from '../profiles/power-sensors.js';

/**
 * How compute is timed on this host. Wall time counts the time the process
 * sat descheduled while other work ran on the machine, so on a loaded host it
 * inflates device seconds and joules at random (a 2-core box at load 9 ran
 * the same training 1.3-4x slower in wall time). The device clock's contract
 * is "host time of the work x speed factor": the work is the CPU time it
 * used, so busy CPU time is measured instead.
 * - `thread-cpu`: CPU time of the calling thread (Linux
 *   `/proc/thread-self/schedstat`, ns). The wasm and cpu backends train on the
 *   main thread; the swap worker and the stream writer are other threads,
 *   accounted as storage by the device model, so they are left out.
 * - `process-cpu`: user + system CPU of every thread (`process.cpuUsage()`),
 *   for tfjs-node, whose kernels run on TensorFlow's own thread pool.
 * - `wall`: `performance.now()`, where neither is available.
 */
export type BusyClockSource = 'thread-cpu' | 'process-cpu' | 'wall';

export interface BusyClock {
  readonly source: BusyClockSource;
  /** Monotonic seconds of busy time so far (only differences mean anything). */
  seconds(): number;
}

const SCHEDSTAT = '/proc/thread-self/schedstat';

function threadCpuSeconds(): number {
  return Number(readFileSync(SCHEDSTAT, 'utf8').split(' ', 1)[0]) / 1e9;
}

function threadCpuAvailable(): boolean {
  try {
    return Number.isFinite(threadCpuSeconds());
  } catch {
    return false;
  }
}

/** The busy clock for work done by `backend` (the tfjs backend's name), best available first. */
export function hostBusyClock(backend: string = 'wasm', prefer?: BusyClockSource): BusyClock {
  const source: BusyClockSource = prefer ?? (backend === 'tfjs-node' ? 'process-cpu' : threadCpuAvailable() ? 'thread-cpu' : 'process-cpu');
  switch (source) {
    case 'thread-cpu':
      return Object.freeze({ source, seconds: threadCpuSeconds });
    case 'process-cpu':
      return Object.freeze({
        source,
        seconds: () => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1e6;
        },
      });
    default:
      return Object.freeze({ source: 'wall' as const, seconds: () => performance.now() / 1000 });
  }
}

/** One piece of device work: compute measured on this host plus storage I/O. */
export interface DeviceWork {
  /** Host seconds of computation (training steps, evaluation), storage waits excluded. */
  computeHostSeconds: number;
  storage?: StorageWork;
}

export type WorkPhase = 'training' | 'profiling';

export interface EnergyBreakdown {
  compute: number;
  storage: number;
  radio: number;
  idle: number;
  total: number;
  /** Where `total` came from: the power model, or a sensor (RAPL / INA3221). */
  source: EnergySource;
  /** Where each component came from (a sensor cannot split by component: always the model). */
  sources: { compute: EnergySource; storage: EnergySource; radio: EnergySource; idle: EnergySource };
  /** What a real sensor on this host measured while the run went on; null without one. Not the profiled device. */
  measured: MeasuredEnergy | null;
  sensorNotes: readonly string[];
}

export interface ProfilingCost {
  /** Host seconds of profiling work measured here. */
  hostSeconds: number;
  /** Device seconds of profiling (compute + storage). */
  seconds: number;
  joules: number;
  /** Profiling joules / the run's total joules (profiling included). */
  share: number;
  /** Profiling device seconds / the run's device seconds. */
  timeShare: number;
}

export interface DeviceAccountingReport {
  profile: string;
  /** Host seconds of the accounted work (training + profiling compute; metric evaluation excluded). */
  hostSeconds: number;
  /** Seconds the same work takes on the profiled device (serial model: compute + storage). */
  deviceSeconds: number;
  deviceTime: {
    computeSeconds: number;
    storageReadSeconds: number;
    storageWriteSeconds: number;
    storage: { readBytes: number; writeBytes: number; reads: number; writes: number };
    /** How device seconds are derived. */
    source: string;
  };
  energy: EnergyBreakdown;
  profiling: ProfilingCost;
}

export interface DeviceAccountingOptions extends PowerSensorOptions {
  /** Host throughput / reference-host throughput. Default 1 (this machine is the reference host). */
  hostSpeedFactor?: number;
  /** How the compute seconds handed to `account` were measured, for the report. Default `wall`. */
  computeClock?: BusyClockSource;
}

/** The modelled joules of `work` on `profile`, on a throwaway clock (Miro's estimates). */
export function estimateJoules(profile: DeviceProfile, work: DeviceWork, hostSpeedFactor = 1): { deviceSeconds: number; joules: ComponentJoules } {
  const clock = new DeviceClock(profile, { hostSpeedFactor });
  clock.compute(Math.max(0, work.computeHostSeconds));
  if (work.storage !== undefined) clock.storage(work.storage);
  const time = clock.snapshot();
  return { deviceSeconds: time.deviceSeconds, joules: modelEnergy(time, profile.power) };
}

/**
 * The run's device clock and energy meter. `start()` opens the sensor window
 * (when this host has RAPL or INA3221), `finish()` closes it.
 */
export class DeviceAccounting {
  readonly profile: DeviceProfile;
  readonly meter: EnergyMeter;
  readonly #profilingClock: DeviceClock;
  readonly #computeClock: BusyClockSource;

  constructor(profile: DeviceProfile, options: DeviceAccountingOptions = {}) {
    this.profile = profile;
    const clock = { hostSpeedFactor: options.hostSpeedFactor ?? 1 };
    this.meter = new EnergyMeter(profile, { ...options, clock, sampleIntervalMs: 1000 });
    this.#profilingClock = new DeviceClock(profile, clock);
    this.#computeClock = options.computeClock ?? 'wall';
  }

  start(): void {
    if (this.meter.state !== 'running') this.meter.start();
  }

  finish(): DeviceAccountingReport {
    if (this.meter.state === 'running') this.meter.stop();
    return this.report();
  }

  /** Accounts work; profiling work goes into the totals and onto the profiling clock. Returns the device seconds it adds. */
  account(phase: WorkPhase, work: DeviceWork): number {
    const clocks = phase === 'profiling' ? [this.meter.clock, this.#profilingClock] : [this.meter.clock];
    let added = 0;
    for (const [i, clock] of clocks.entries()) {
      let s = clock.compute(Math.max(0, work.computeHostSeconds));
      if (work.storage !== undefined) s += clock.storage(work.storage);
      if (i === 0) added = s;
    }
    return added;
  }

  /** Modelled joules so far (totals, profiling included). */
  get joules(): number {
    return modelEnergy(this.meter.clock.snapshot(), this.profile.power).total;
  }

  report(): DeviceAccountingReport {
    const r = this.meter.report();
    const time = this.meter.clock.snapshot();
    const p = this.#profilingClock.snapshot();
    const pj = modelEnergy(p, this.profile.power).total;
    const c = r.components;
    return {
      profile: this.profile.name,
      hostSeconds: time.hostSeconds,
      deviceSeconds: time.deviceSeconds,
      deviceTime: {
        computeSeconds: time.compute.deviceSeconds,
        storageReadSeconds: time.storage.readSeconds,
        storageWriteSeconds: time.storage.writeSeconds,
        storage: { readBytes: time.storage.readBytes, writeBytes: time.storage.writeBytes, reads: time.storage.reads, writes: time.storage.writes },
        source: `model: host compute seconds (${this.#computeClock}) x ${this.meter.clock.options.hostSpeedFactor} / speedFactor ${this.meter.clock.options.speedFactor}`
          + ' + bytes / storage MB/s + requests x storage latency (serial)',
      },
      energy: {
        compute: c.compute.joules, storage: c.storage.joules, radio: c.radio.joules, idle: c.idle.joules,
        total: r.total.joules, source: r.total.source,
        sources: { compute: c.compute.source, storage: c.storage.source, radio: c.radio.source, idle: c.idle.source },
        measured: r.measured, sensorNotes: r.sensorNotes,
      },
      profiling: {
        hostSeconds: p.hostSeconds,
        seconds: p.deviceSeconds,
        joules: pj,
        share: r.modelledJoules > 0 ? pj / r.modelledJoules : 0,
        timeShare: time.deviceSeconds > 0 ? p.deviceSeconds / time.deviceSeconds : 0,
      },
    };
  }
}
