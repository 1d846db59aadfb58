import { StrataError } from '../common/strata-error.js';
import type { DeviceProfile } from './device-profile.js';

/** Bytes per MB and bits per Mbit: profiles use decimal units. */
export const BYTES_PER_MB = 1e6;
export const BITS_PER_MBIT = 1e6;

export interface DeviceClockOptions {
  /**
   * How fast the machine this runs on is relative to the reference host
   * (host throughput / reference throughput). Measured host seconds are first
   * turned into reference seconds with it. Default `1` (this is the reference host).
   */
  hostSpeedFactor?: number;
  /** Override of the profile's `compute.speedFactor`, e.g. after calibration. Default: the profile's. */
  speedFactor?: number;
}

export interface CompiledDeviceClockOptions {
  readonly hostSpeedFactor: number;
  readonly speedFactor: number;
}

export function compileDeviceClockOptions(profile: DeviceProfile, options: DeviceClockOptions = {}): CompiledDeviceClockOptions {
  const hostSpeedFactor = options.hostSpeedFactor ?? 1;
  const speedFactor = options.speedFactor ?? profile.compute.speedFactor;
  for (const [name, v] of [['hostSpeedFactor', hostSpeedFactor], ['speedFactor', speedFactor]] as const) {
    if (!Number.isFinite(v) || v <= 0) {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `DeviceClock option ${name} must be a positive number, got ${String(v)}`, { option: name });
    }
  }
  return Object.freeze({ hostSpeedFactor, speedFactor });
}

/** Storage work to account: bytes moved and I/O requests made. */
export interface StorageWork {
  readBytes?: number;
  writeBytes?: number;
  /** Read requests; each pays `storage.latencyMs`. Default 0. */
  reads?: number;
  /** Synced write requests; each pays `storage.latencyMs`. Default 0. */
  writes?: number;
  /** Seconds the work took on this host, added to host time. Default 0. */
  hostSeconds?: number;
}

/** Network work to account. */
export interface NetworkWork {
  upBytes?: number;
  downBytes?: number;
  /** Request/response round trips; each pays `network.rttMs`. Default 0. */
  roundTrips?: number;
  /** Seconds the work took on this host, added to host time. Default 0. */
  hostSeconds?: number;
}

/** Everything a clock has accumulated, in seconds and bytes. */
export interface DeviceTime {
  /** Seconds measured on this host (compute plus any host time given for I/O). */
  readonly hostSeconds: number;
  /** Seconds the same work would take on the device: the sum of the parts below. */
  readonly deviceSeconds: number;
  readonly compute: { readonly hostSeconds: number; readonly deviceSeconds: number };
  readonly storage: {
    readonly readSeconds: number;
    readonly writeSeconds: number;
    readonly readBytes: number;
    readonly writeBytes: number;
    readonly reads: number;
    readonly writes: number;
  };
  readonly network: {
    /** Transmit time: upBytes over the uplink. */
    readonly upSeconds: number;
    /** Receive time: downBytes over the downlink. */
    readonly downSeconds: number;
    /** Waiting on round trips. */
    readonly rttSeconds: number;
    readonly upBytes: number;
    readonly downBytes: number;
    readonly roundTrips: number;
  };
  /** Device seconds spent waiting (idle), e.g. for the next round. */
  readonly waitSeconds: number;
}

function nonNegative(name: string, v: number | undefined): number {
  const x = v ?? 0;
  if (!Number.isFinite(x) || x < 0) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `DeviceClock: ${name} must be a non-negative number, got ${String(v)}`, { option: name });
  }
  return x;
}

/**
 * Turns work measured on this host into the time it would take on a profiled
 * device:
 * - compute: `hostSeconds x hostSpeedFactor / speedFactor`;
 * - storage: `bytes / MB/s + requests x latency`;
 * - network: `bytes / Mbit/s + round trips x RTT`.
 * Host seconds and device seconds accumulate separately; the parts are serial
 * (no overlap of compute and I/O), which is what a single training thread does.
 */
export class DeviceClock {
  readonly profile: DeviceProfile;
  readonly options: CompiledDeviceClockOptions;
  #computeHost = 0;
  #computeDevice = 0;
  #ioHost = 0;
  #storage = { readSeconds: 0, writeSeconds: 0, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 };
  #network = { upSeconds: 0, downSeconds: 0, rttSeconds: 0, upBytes: 0, downBytes: 0, roundTrips: 0 };
  #wait = 0;

  constructor(profile: DeviceProfile, options: DeviceClockOptions = {}) {
    this.profile = profile;
    this.options = compileDeviceClockOptions(profile, options);
  }

  /** Accounts compute measured on this host; returns the device seconds it adds. */
  compute(hostSeconds: number): number {
    const host = nonNegative('hostSeconds', hostSeconds);
    const device = (host * this.options.hostSpeedFactor) / this.options.speedFactor;
    this.#computeHost += host;
    this.#computeDevice += device;
    return device;
  }

  /** Runs `fn`, measures its wall time on this host, and accounts it as compute. */
  async measure<T>(fn: () => T | Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.compute((performance.now() - start) / 1000);
    }
  }

  /** Accounts storage I/O; returns the device seconds it adds. */
  storage(work: StorageWork): number {
    const s = this.profile.storage;
    const readBytes = nonNegative('readBytes', work.readBytes);
    const writeBytes = nonNegative('writeBytes', work.writeBytes);
    const reads = nonNegative('reads', work.reads);
    const writes = nonNegative('writes', work.writes);
    const latency = s.latencyMs / 1000;
    const readSeconds = readBytes / (s.readMBps * BYTES_PER_MB) + reads * latency;
    const writeSeconds = writeBytes / (s.writeMBps * BYTES_PER_MB) + writes * latency;
    const st = this.#storage;
    st.readSeconds += readSeconds;
    st.writeSeconds += writeSeconds;
    st.readBytes += readBytes;
    st.writeBytes += writeBytes;
    st.reads += reads;
    st.writes += writes;
    this.#ioHost += nonNegative('hostSeconds', work.hostSeconds);
    return readSeconds + writeSeconds;
  }

  /** Accounts network transfer; returns the device seconds it adds. */
  network(work: NetworkWork): number {
    const n = this.profile.network;
    const upBytes = nonNegative('upBytes', work.upBytes);
    const downBytes = nonNegative('downBytes', work.downBytes);
    const roundTrips = nonNegative('roundTrips', work.roundTrips);
    const upSeconds = (upBytes * 8) / (n.upMbps * BITS_PER_MBIT);
    const downSeconds = (downBytes * 8) / (n.downMbps * BITS_PER_MBIT);
    const rttSeconds = (roundTrips * n.rttMs) / 1000;
    const nt = this.#network;
    nt.upSeconds += upSeconds;
    nt.downSeconds += downSeconds;
    nt.rttSeconds += rttSeconds;
    nt.upBytes += upBytes;
    nt.downBytes += downBytes;
    nt.roundTrips += roundTrips;
    this.#ioHost += nonNegative('hostSeconds', work.hostSeconds);
    return upSeconds + downSeconds + rttSeconds;
  }

  /** Accounts device seconds spent idle (waiting); returns them. */
  wait(deviceSeconds: number): number {
    const s = nonNegative('deviceSeconds', deviceSeconds);
    this.#wait += s;
    return s;
  }

  /** Device seconds so far. */
  get deviceSeconds(): number {
    return this.snapshot().deviceSeconds;
  }

  /** Host seconds so far. */
  get hostSeconds(): number {
    return this.#computeHost + this.#ioHost;
  }

  /** A frozen copy of everything accumulated. */
  snapshot(): DeviceTime {
    const st = { ...this.#storage };
    const nt = { ...this.#network };
    const deviceSeconds =
      this.#computeDevice + st.readSeconds + st.writeSeconds + nt.upSeconds + nt.downSeconds + nt.rttSeconds + this.#wait;
    return Object.freeze({
      hostSeconds: this.hostSeconds,
      deviceSeconds,
      compute: Object.freeze({ hostSeconds: this.#computeHost, deviceSeconds: this.#computeDevice }),
      storage: Object.freeze(st),
      network: Object.freeze(nt),
      waitSeconds: this.#wait,
    });
  }

  /** Clears every total. */
  reset(): void {
    this.#computeHost = 0;
    this.#computeDevice = 0;
    this.#ioHost = 0;
    this.#storage = { readSeconds: 0, writeSeconds: 0, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 };
    this.#network = { upSeconds: 0, downSeconds: 0, rttSeconds: 0, upBytes: 0, downBytes: 0, roundTrips: 0 };
    this.#wait = 0;
  }
}
