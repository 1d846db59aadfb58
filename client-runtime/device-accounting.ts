/**
 * Device time and energy of a continual-learning run on a profiled device,
 * from counted work priced by the profile (its price list): training and
 * profiling compute as FLOPs (see `ml/work-count.ts`) over the device's
 * FLOP/s, the background writer's stream writes, swap reads and EM fills at
 * the profile's storage bandwidth and per-request latency, and a federated
 * round's bytes and round trips at its radio's. Nothing measured
 * on this host is priced, so a run costs the same device seconds and joules
 * on any host and under any load; host seconds are kept beside as a
 * diagnostic. Profiling is accounted in the run's totals and, separately,
 * on its own clock.
 */
import { DeviceClock, type NetworkWork, type StorageWork } from '../profiles/device-clock.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { EnergyMeter, modelEnergy, type ComponentJoules, type MeasuredEnergy } from '../profiles/energy-meter.js';
import type { EnergySource, PowerSensorOptions } from '../profiles/power-sensors.js';
import type { BusyClockSource } from './busy-clock.js';

export { hostBusyClock, type BusyClock, type BusyClockSource } from './busy-clock.js';

/** Samples the background writer commits per synced write (one storage request each). */
export const WRITE_BATCH_SAMPLES = 1024;

/** One piece of counted device work: compute FLOPs plus storage and radio I/O. */
export interface DeviceWork {
  /** Counted FLOPs: training steps, Miro's trials and their validation passes. */
  flops: number;
  /** Seconds the work took on this host: a diagnostic, never priced. Default 0. */
  hostSeconds?: number;
  storage?: StorageWork;
  /** Bytes sent and received and round trips (a federated round's model download and update upload). */
  network?: NetworkWork;
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
  /** Host seconds of profiling work measured here (diagnostic). */
  hostSeconds: number;
  /** Counted FLOPs of profiling (trials and their validation passes). */
  flops: number;
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
  /** Host seconds of the accounted work (training + profiling compute; metric evaluation excluded): a diagnostic. */
  hostSeconds: number;
  /** Seconds the same work takes on the profiled device (serial model: compute + storage). */
  deviceSeconds: number;
  deviceTime: {
    computeSeconds: number;
    storageReadSeconds: number;
    storageWriteSeconds: number;
    storage: { readBytes: number; writeBytes: number; reads: number; writes: number };
    /** Counted FLOPs priced as compute (training and profiling). */
    flops: number;
    /** The device's compute price: counted GFLOP/s. */
    gflops: number;
    /** How the host seconds (the diagnostic) were measured. */
    hostClock: BusyClockSource;
    /** How device seconds are derived. */
    source: string;
  };
  energy: EnergyBreakdown;
  profiling: ProfilingCost;
}

export interface DeviceAccountingOptions extends PowerSensorOptions {
  /** How the host seconds handed to `account` were measured, for the report. Default `wall`. */
  computeClock?: BusyClockSource;
  /**
   * Joules the device spent before this accounting started (a federated
   * device's earlier rounds), in all and on profiling: counted in `joules`
   * and `profilingJoules` (what a profiling budget weighs), not in `report()`.
   */
  carried?: { joules: number; profilingJoules: number };
}

/** The modelled device seconds and joules of `work` on `profile`, on a throwaway clock (Miro's estimates). */
export function estimateJoules(profile: DeviceProfile, work: DeviceWork): { deviceSeconds: number; joules: ComponentJoules } {
  const clock = new DeviceClock(profile);
  clock.compute({ flops: work.flops });
  if (work.storage !== undefined) clock.storage(work.storage);
  if (work.network !== undefined) clock.network(work.network);
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
  readonly #carried: { joules: number; profilingJoules: number };

  constructor(profile: DeviceProfile, options: DeviceAccountingOptions = {}) {
    this.profile = profile;
    this.meter = new EnergyMeter(profile, { ...options, sampleIntervalMs: 1000 });
    this.#profilingClock = new DeviceClock(profile);
    this.#computeClock = options.computeClock ?? 'wall';
    this.#carried = options.carried ?? { joules: 0, profilingJoules: 0 };
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
      let s = clock.compute({ flops: work.flops, hostSeconds: Math.max(0, work.hostSeconds ?? 0) });
      if (work.storage !== undefined) s += clock.storage(work.storage);
      if (work.network !== undefined) s += clock.network(work.network);
      if (i === 0) added = s;
    }
    return added;
  }

  /** Modelled joules so far (totals, profiling included; with what was carried in). */
  get joules(): number {
    return this.#carried.joules + modelEnergy(this.meter.clock.snapshot(), this.profile.power).total;
  }

  /** Modelled joules of profiling so far (with what was carried in). */
  get profilingJoules(): number {
    return this.#carried.profilingJoules + modelEnergy(this.#profilingClock.snapshot(), this.profile.power).total;
  }

  report(): DeviceAccountingReport {
    const r = this.meter.report();
    const time = this.meter.clock.snapshot();
    const p = this.#profilingClock.snapshot();
    const pj = modelEnergy(p, this.profile.power).total;
    const c = r.components;
    const gflops = this.meter.clock.options.gflops;
    return {
      profile: this.profile.name,
      hostSeconds: time.hostSeconds,
      deviceSeconds: time.deviceSeconds,
      deviceTime: {
        computeSeconds: time.compute.deviceSeconds,
        storageReadSeconds: time.storage.readSeconds,
        storageWriteSeconds: time.storage.writeSeconds,
        storage: { readBytes: time.storage.readBytes, writeBytes: time.storage.writeBytes, reads: time.storage.reads, writes: time.storage.writes },
        flops: time.compute.flops,
        gflops,
        hostClock: this.#computeClock,
        source: `model: counted FLOPs / ${gflops} GFLOP/s + bytes / storage MB/s + requests x storage latency (serial);`
          + ` host seconds (${this.#computeClock}) are a diagnostic, not priced`,
      },
      energy: {
        compute: c.compute.joules, storage: c.storage.joules, radio: c.radio.joules, idle: c.idle.joules,
        total: r.total.joules, source: r.total.source,
        sources: { compute: c.compute.source, storage: c.storage.source, radio: c.radio.source, idle: c.idle.source },
        measured: r.measured, sensorNotes: r.sensorNotes,
      },
      profiling: {
        hostSeconds: p.hostSeconds,
        flops: p.compute.flops,
        seconds: p.deviceSeconds,
        joules: pj,
        share: r.modelledJoules > 0 ? pj / r.modelledJoules : 0,
        timeShare: time.deviceSeconds > 0 ? p.deviceSeconds / time.deviceSeconds : 0,
      },
    };
  }
}
