import { StrataError } from '../common/strata-error.js';
import type { DeviceProfile } from './device-profile.js';
import { BITS_PER_MBIT, BYTES_PER_MB } from './units.js';

export { BITS_PER_MBIT, BYTES_PER_MB } from './units.js';

export interface DeviceClockOptions {
  /** Override of the profile's `compute.gflops` (counted training GFLOP/s). Default: the profile's. */
  gflops?: number;
}

export interface CompiledDeviceClockOptions {
  readonly gflops: number;
}

export function compileDeviceClockOptions(profile: DeviceProfile, options: DeviceClockOptions = {}): CompiledDeviceClockOptions {
  const gflops = options.gflops ?? profile.compute.gflops;
  if (!Number.isFinite(gflops) || gflops <= 0) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `DeviceClock option gflops must be a positive number, got ${String(gflops)}`, { option: 'gflops' });
  }
  return Object.freeze({ gflops });
}

/** Compute work to account: counted FLOPs (see `ml/work-count.ts`). */
export interface ComputeWork {
  flops: number;
  /** Seconds the work took on this host: a diagnostic, never priced. Default 0. */
  hostSeconds?: number;
}

/** Storage work to account: bytes moved and I/O requests made. */
export interface StorageWork {
  readBytes?: number;
  writeBytes?: number;
  /** Read requests; each pays `storage.latencyMs`. Default 0. */
  reads?: number;
  /** Synced write requests; each pays `storage.latencyMs`. Default 0. */
  writes?: number;
  /** Seconds the work took on this host (diagnostic, never priced). Default 0. */
  hostSeconds?: number;
}

/** Network work to account. */
export interface NetworkWork {
  upBytes?: number;
  downBytes?: number;
  /** Request/response round trips; each pays `network.rttMs`. Default 0. */
  roundTrips?: number;
  /** Seconds the work took on this host (diagnostic, never priced). Default 0. */
  hostSeconds?: number;
}

/** Everything a clock has accumulated, in seconds and bytes. */
export interface DeviceTime {
  /** Seconds measured on this host for the same work (a diagnostic: never priced). */
  readonly hostSeconds: number;
  /** Seconds the work takes on the device: the sum of the parts below. */
  readonly deviceSeconds: number;
  readonly compute: { readonly hostSeconds: number; readonly deviceSeconds: number; readonly flops: number };
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
 * Prices counted work at a profiled device's rates (its price list):
 * - compute: `FLOPs / (gflops x 1e9)`;
 * - storage: `bytes / MB/s + requests x latency`;
 * - network: `bytes / Mbit/s + round trips x RTT`.
 * Nothing measured on this host is priced, so the same work costs the same
 * device seconds on any host and under any load. Host seconds handed in with
 * the work accumulate beside, as a diagnostic. The parts are serial (no
 * overlap of compute and I/O), which is what a single training thread does.
 */
export class DeviceClock {
  readonly profile: DeviceProfile;
  readonly options: CompiledDeviceClockOptions;
  #computeHost = 0;
  #computeDevice = 0;
  #flops = 0;
  #ioHost = 0;
  #storage = { readSeconds: 0, writeSeconds: 0, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 };
  #network = { upSeconds: 0, downSeconds: 0, rttSeconds: 0, upBytes: 0, downBytes: 0, roundTrips: 0 };
  #wait = 0;

  constructor(profile: DeviceProfile, options: DeviceClockOptions = {}) {
    this.profile = profile;
    this.options = compileDeviceClockOptions(profile, options);
  }

  /** Accounts counted compute; returns the device seconds it adds. */
  compute(work: ComputeWork): number {
    const flops = nonNegative('flops', work.flops);
    const device = flops / (this.options.gflops * 1e9);
    this.#flops += flops;
    this.#computeHost += nonNegative('hostSeconds', work.hostSeconds);
    this.#computeDevice += device;
    return device;
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
      compute: Object.freeze({ hostSeconds: this.#computeHost, deviceSeconds: this.#computeDevice, flops: this.#flops }),
      storage: Object.freeze(st),
      network: Object.freeze(nt),
      waitSeconds: this.#wait,
    });
  }

  /** Clears every total. */
  reset(): void {
    this.#computeHost = 0;
    this.#computeDevice = 0;
    this.#flops = 0;
    this.#ioHost = 0;
    this.#storage = { readSeconds: 0, writeSeconds: 0, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 };
    this.#network = { upSeconds: 0, downSeconds: 0, rttSeconds: 0, upBytes: 0, downBytes: 0, roundTrips: 0 };
    this.#wait = 0;
  }
}
