import { BITS_PER_MBIT, BYTES_PER_MB } from './units.js';
import type { DeviceProfile } from './device-profile.js';

/**
 * What each unit of counted work costs a profiled device, in seconds and in
 * joules. Joules here are the ACTIVE delta above idle of the component doing
 * the work; the device also draws `idleW` for every device second, whatever
 * it does (see `idleW`).
 */
export interface PriceList {
  readonly profile: string;
  readonly compute: {
    /** Counted training FLOPs per second (`compute.gflops x 1e9`). */
    readonly flopsPerSecond: number;
    /** `computeW / flopsPerSecond`. */
    readonly joulesPerFlop: number;
    /** With the idle draw over the same seconds: `(idleW + computeW) / flopsPerSecond`. */
    readonly joulesPerFlopWithIdle: number;
  };
  readonly storage: {
    readonly readSecondsPerByte: number;
    readonly writeSecondsPerByte: number;
    /** Per I/O request (a random read or a synced write). */
    readonly latencySeconds: number;
    /** `storageW x readSecondsPerByte`. */
    readonly readJoulesPerByte: number;
    readonly writeJoulesPerByte: number;
    /** `storageW x latencySeconds`. */
    readonly joulesPerRequest: number;
  };
  readonly network: {
    readonly upSecondsPerByte: number;
    readonly downSecondsPerByte: number;
    readonly rttSeconds: number;
    /** `radioTxW x upSecondsPerByte`. */
    readonly upJoulesPerByte: number;
    /** `radioRxW x downSecondsPerByte`. */
    readonly downJoulesPerByte: number;
    /** `radioRxW x rttSeconds`: the radio listens while it waits. */
    readonly joulesPerRoundTrip: number;
  };
  /** Drawn for every device second (compute, I/O or waiting). */
  readonly idleW: number;
}

/** The price list of a profile, from its throughput, latency and power fields. */
export function priceList(profile: DeviceProfile): PriceList {
  const { compute, storage, network, power } = profile;
  const flopsPerSecond = compute.gflops * 1e9;
  const readSecondsPerByte = 1 / (storage.readMBps * BYTES_PER_MB);
  const writeSecondsPerByte = 1 / (storage.writeMBps * BYTES_PER_MB);
  const latencySeconds = storage.latencyMs / 1000;
  const upSecondsPerByte = 8 / (network.upMbps * BITS_PER_MBIT);
  const downSecondsPerByte = 8 / (network.downMbps * BITS_PER_MBIT);
  const rttSeconds = network.rttMs / 1000;
  return Object.freeze({
    profile: profile.name,
    compute: Object.freeze({ flopsPerSecond, joulesPerFlop: power.computeW / flopsPerSecond, joulesPerFlopWithIdle: (power.idleW + power.computeW) / flopsPerSecond }),
    storage: Object.freeze({
      readSecondsPerByte, writeSecondsPerByte, latencySeconds,
      readJoulesPerByte: power.storageW * readSecondsPerByte, writeJoulesPerByte: power.storageW * writeSecondsPerByte,
      joulesPerRequest: power.storageW * latencySeconds,
    }),
    network: Object.freeze({
      upSecondsPerByte, downSecondsPerByte, rttSeconds,
      upJoulesPerByte: power.radioTxW * upSecondsPerByte, downJoulesPerByte: power.radioRxW * downSecondsPerByte,
      joulesPerRoundTrip: power.radioRxW * rttSeconds,
    }),
    idleW: power.idleW,
  });
}
