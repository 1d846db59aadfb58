import type { DeviceProfile } from './device-profile.js';

const COLUMNS: ReadonlyArray<{ head: string; right: boolean; cell: (p: DeviceProfile) => string }> = [
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

/**
 * The lines `strata profiles` prints: a header and one aligned row per
 * profile. Power columns marked `+` are active deltas above idle.
 */
export function formatProfileTable(profiles: readonly DeviceProfile[]): string[] {
  const rows = [COLUMNS.map((c) => c.head), ...profiles.map((p) => COLUMNS.map((c) => c.cell(p)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => {
        const w = widths[i] ?? cell.length;
        return COLUMNS[i]?.right === true ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd(),
  );
}
