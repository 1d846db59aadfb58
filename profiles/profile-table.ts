import type { DeviceProfile } from './device-profile.js';
import { priceList, type PriceList } from './price-list.js';

type Column<T> = { head: string; right: boolean; cell: (p: T) => string };

const COLUMNS: ReadonlyArray<Column<DeviceProfile>> = [
  { head: 'name', right: false, cell: (p) => p.name },
  { head: 'speed', right: true, cell: (p) => `${fmt(p.compute.speedFactor)}x` },
  { head: 'cpu share', right: true, cell: (p) => fmt(p.compute.cpuShare) },
  { head: 'RAM MB', right: true, cell: (p) => fmt(p.memory.learningRamMB) },
  { head: 'storage r/w MB/s', right: true, cell: (p) => `${fmt(p.storage.readMBps)}/${fmt(p.storage.writeMBps)}` },
  { head: 'latency ms', right: true, cell: (p) => fmt(p.storage.latencyMs) },
  { head: 'net up/down Mbit/s', right: true, cell: (p) => `${fmt(p.network.upMbps)}/${fmt(p.network.downMbps)}` },
  { head: 'RTT ms', right: true, cell: (p) => fmt(p.network.rttMs) },
  { head: 'idle W', right: true, cell: (p) => fmt(p.power.idleW) },
  { head: '+compute W', right: true, cell: (p) => fmt(p.power.computeW) },
  { head: '+storage W', right: true, cell: (p) => fmt(p.power.storageW) },
  { head: '+radio tx/rx W', right: true, cell: (p) => `${fmt(p.power.radioTxW)}/${fmt(p.power.radioRxW)}` },
  { head: 'dropout', right: true, cell: (p) => fmt(p.availability.dropoutRate) },
];

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(3)));
}

/** What counted work costs: compute per GFLOP, storage and radio per byte and per request (active power above idle). */
const PRICE_COLUMNS: ReadonlyArray<Column<PriceList>> = [
  { head: 'name', right: false, cell: (l) => l.profile },
  { head: 'GFLOP/s', right: true, cell: (l) => fmt(l.compute.flopsPerSecond / 1e9) },
  { head: 'J/GFLOP', right: true, cell: (l) => fmt(l.compute.joulesPerFlop * 1e9) },
  { head: 'J/GFLOP +idle', right: true, cell: (l) => fmt(l.compute.joulesPerFlopWithIdle * 1e9) },
  { head: 'storage r/w nJ/B', right: true, cell: (l) => `${fmt(l.storage.readJoulesPerByte * 1e9)}/${fmt(l.storage.writeJoulesPerByte * 1e9)}` },
  { head: 'latency ms', right: true, cell: (l) => fmt(l.storage.latencySeconds * 1000) },
  { head: 'mJ/request', right: true, cell: (l) => fmt(l.storage.joulesPerRequest * 1000) },
  { head: 'radio tx/rx nJ/B', right: true, cell: (l) => `${fmt(l.network.upJoulesPerByte * 1e9)}/${fmt(l.network.downJoulesPerByte * 1e9)}` },
  { head: 'RTT ms', right: true, cell: (l) => fmt(l.network.rttSeconds * 1000) },
  { head: 'mJ/RTT', right: true, cell: (l) => fmt(l.network.joulesPerRoundTrip * 1000) },
  { head: 'idle W', right: true, cell: (l) => fmt(l.idleW) },
];

function align<T>(columns: ReadonlyArray<Column<T>>, items: readonly T[]): string[] {
  const rows = [columns.map((c) => c.head), ...items.map((p) => columns.map((c) => c.cell(p)))];
  const widths = columns.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => {
        const w = widths[i] ?? cell.length;
        return columns[i]?.right === true ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The lines `strata profiles` prints: a header and one aligned row per
 * profile. Power columns marked `+` are active deltas above idle.
 */
export function formatProfileTable(profiles: readonly DeviceProfile[]): string[] {
  return align(COLUMNS, profiles);
}

/**
 * The price list `strata profiles` prints under the profiles: what counted
 * work costs each device. Joules are the active delta above idle, except
 * `J/GFLOP +idle`, which adds the idle draw over the compute seconds.
 */
export function formatPriceTable(profiles: readonly DeviceProfile[]): string[] {
  return align(PRICE_COLUMNS, profiles.map(priceList));
}
