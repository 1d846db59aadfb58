import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseProfile, type DeviceProfile } from '../../profiles/index.js';

/** A profile with round numbers, so expected seconds and joules are easy to compute by hand (2 GFLOP/s: 12e9 FLOPs take 6 s). */
export function roundProfile(): DeviceProfile {
  return parseProfile({
    name: 'round-numbers',
    description: 'Round numbers for hand-computed tests.',
    compute: { speedFactor: 0.25, gflops: 2 },
    memory: { learningRamMB: 256 },
    storage: { readMBps: 100, writeMBps: 50, latencyMs: 2 },
    network: { upMbps: 8, downMbps: 16, rttMs: 50 },
    power: { idleW: 1, computeW: 4, storageW: 0.5, radioTxW: 2, radioRxW: 1 },
    availability: { dropoutRate: 0 },
    sources: {},
  });
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Writes `files` (path relative to root -> contents) into a fake sysfs tree. */
export function writeTree(root: string, files: Record<string, string | number>): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${content}\n`);
  }
}

export const RAPL = 'sys/class/powercap';
export const INA_IIO = 'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0';
export const INA_HWMON = 'sys/bus/i2c/drivers/ina3221/7-0040/hwmon/hwmon6';
