import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  detectPowerSensor,
  findIna3221Rails,
  findRaplZones,
  Ina3221Sensor,
  RaplSensor,
  raplDeltaUj,
  totalRails,
} from '../../profiles/index.js';
import { INA_HWMON, INA_IIO, RAPL, tempRoot, writeTree } from './fixtures.js';

const roots: string[] = [];
function root(): string {
  const r = tempRoot('strata-sysfs-');
  roots.push(r);
  return r;
}
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function raplTree(r: string, pkg: number, max = 262_143_328_850): void {
  writeTree(r, {
    [`${RAPL}/intel-rapl/enabled`]: 1, // the control-type directory: no energy_uj, ignored
    [`${RAPL}/intel-rapl:0/name`]: 'package-0',
    [`${RAPL}/intel-rapl:0/energy_uj`]: pkg,
    [`${RAPL}/intel-rapl:0/max_energy_range_uj`]: max,
    [`${RAPL}/intel-rapl:0:0/name`]: 'core',
    [`${RAPL}/intel-rapl:0:0/energy_uj`]: 500,
    [`${RAPL}/intel-rapl:0:0/max_energy_range_uj`]: max,
    [`${RAPL}/intel-rapl:0:1/name`]: 'dram',
    [`${RAPL}/intel-rapl:0:1/energy_uj`]: 0,
    [`${RAPL}/intel-rapl:0:1/max_energy_range_uj`]: max,
    [`${RAPL}/intel-rapl:1/name`]: 'psys',
    [`${RAPL}/intel-rapl:1/energy_uj`]: 0,
    [`${RAPL}/intel-rapl:1/max_energy_range_uj`]: max,
  });
}

const set = (r: string, rel: string, v: number) => writeFileSync(path.join(r, rel), `${v}\n`);

describe('RAPL', () => {
  it('computes counter deltas, with one wrap past max_energy_range_uj', () => {
    expect(raplDeltaUj(1_000, 4_000, 10_000)).toBe(3_000);
    expect(raplDeltaUj(9_000_000, 500_000, 10_000_000)).toBe(1_500_000);
    expect(raplDeltaUj(9_000_000, 500_000, null)).toBe(500_000);
  });

  it('finds zones and sums packages and DRAM, not core sub-zones or psys', () => {
    const r = root();
    raplTree(r, 1_000_000);
    const { zones } = findRaplZones(r);
    expect(zones.map((z) => z.id)).toEqual(['intel-rapl:0', 'intel-rapl:0:0', 'intel-rapl:0:1', 'intel-rapl:1']);
    expect(zones.filter((z) => z.inTotal).map((z) => z.name)).toEqual(['package-0', 'dram']);
  });

  it('measures energy across polls, including a counter wrap-around', () => {
    const r = root();
    const max = 10_000_000;
    raplTree(r, 7_000_000, max);
    const sensor = new RaplSensor(findRaplZones(r).zones);
    sensor.begin(0);
    set(r, `${RAPL}/intel-rapl:0/energy_uj`, 9_000_000); // +2 J
    set(r, `${RAPL}/intel-rapl:0:1/energy_uj`, 250_000); // dram +0.25 J
    set(r, `${RAPL}/intel-rapl:0:0/energy_uj`, 1_500_500); // core +1.5 J, inside the package: not summed
    sensor.poll(1000);
    set(r, `${RAPL}/intel-rapl:0/energy_uj`, 500_000); // wrapped: +1 J to the range, +0.5 J after = +1.5 J
    sensor.poll(2000);
    const e = sensor.read();
    expect(e.joules).toBeCloseTo(2 + 1.5 + 0.25, 9);
    expect(e.channels['intel-rapl:0 (package-0)']).toBeCloseTo(3.5, 9);
    expect(e.channels['intel-rapl:0:0 (core)']).toBeCloseTo(1.5, 9);
    expect(e.seconds).toBe(2);
    expect(e.samples).toBe(3);
  });

  it('skips unreadable or missing trees with a reason', () => {
    const r = root();
    expect(findRaplZones(r).zones).toEqual([]);
    expect(findRaplZones(r).reason).toMatch(/does not exist/);
  });
});

describe('INA3221', () => {
  function iioTree(r: string, inMw: number): void {
    writeTree(r, {
      [`${INA_IIO}/rail_name_0`]: 'POM_5V_IN',
      [`${INA_IIO}/in_power0_input`]: inMw,
      [`${INA_IIO}/rail_name_1`]: 'POM_5V_GPU',
      [`${INA_IIO}/in_power1_input`]: 100,
      [`${INA_IIO}/rail_name_2`]: 'POM_5V_CPU',
      [`${INA_IIO}/in_power2_input`]: 800,
    });
  }

  it('reads the legacy iio layout (mW) and integrates power with the trapezoid rule', () => {
    const r = root();
    iioTree(r, 2000);
    const { rails } = findIna3221Rails(r);
    expect(rails.map((x) => x.name)).toEqual(['POM_5V_IN', 'POM_5V_GPU', 'POM_5V_CPU']);
    const sensor = new Ina3221Sensor(rails);
    expect(sensor.summed).toEqual(['POM_5V_IN']);
    sensor.begin(0);
    set(r, `${INA_IIO}/in_power0_input`, 4000);
    sensor.poll(1000); // (2 W + 4 W) / 2 x 1 s = 3 J
    sensor.poll(1500); // 4 W x 0.5 s = 2 J
    const e = sensor.read();
    expect(e.joules).toBeCloseTo(5, 9);
    expect(e.channels.POM_5V_CPU).toBeCloseTo(0.8 * 1.5, 9);
    expect(e.channels.POM_5V_GPU).toBeCloseTo(0.1 * 1.5, 9);
    expect(e.seconds).toBe(1.5);
  });

  it('reads the hwmon layout (mV x mA), skipping the shunt-sum channel', () => {
    const r = root();
    writeTree(r, {
      [`${INA_HWMON}/in1_label`]: 'VDD_IN',
      [`${INA_HWMON}/in1_input`]: 5000,
      [`${INA_HWMON}/curr1_input`]: 600,
      [`${INA_HWMON}/in2_label`]: 'VDD_CPU_GPU_CV',
      [`${INA_HWMON}/in2_input`]: 5000,
      [`${INA_HWMON}/curr2_input`]: 200,
      [`${INA_HWMON}/in3_label`]: 'VDD_SOC',
      [`${INA_HWMON}/in3_input`]: 5000,
      [`${INA_HWMON}/curr3_input`]: 150,
      [`${INA_HWMON}/in7_label`]: 'sum of shunt voltages',
      [`${INA_HWMON}/in7_input`]: 12,
    });
    const { rails } = findIna3221Rails(r);
    expect(rails.map((x) => x.name)).toEqual(['VDD_IN', 'VDD_CPU_GPU_CV', 'VDD_SOC']);
    const sensor = new Ina3221Sensor(rails);
    sensor.begin(0);
    sensor.poll(2000); // VDD_IN 3 W x 2 s = 6 J
    const e = sensor.read();
    expect(e.joules).toBeCloseTo(6, 9);
    expect(e.summed).toEqual(['VDD_IN']);
    expect(e.channels.VDD_CPU_GPU_CV).toBeCloseTo(2, 9);
    // Chosen rails override the default.
    const both = new Ina3221Sensor(rails, ['VDD_CPU_GPU_CV', 'VDD_SOC']);
    both.begin(0);
    both.poll(1000);
    expect(both.read().joules).toBeCloseTo(1 + 0.75, 9);
  });

  it('sums all rails when there is no input rail', () => {
    const rails = [
      { name: 'GPU', layout: 'iio' as const, file: '/x' },
      { name: 'CPU', layout: 'iio' as const, file: '/y' },
    ];
    expect(totalRails(rails)).toEqual(['GPU', 'CPU']);
  });
});

describe('detectPowerSensor', () => {
  it('prefers INA3221, then RAPL, else none', () => {
    const both = root();
    raplTree(both, 0);
    writeTree(both, { [`${INA_IIO}/rail_name_0`]: 'POM_5V_IN', [`${INA_IIO}/in_power0_input`]: 1000 });
    expect(detectPowerSensor({ sysfsRoot: both }).sensor?.source).toBe('ina3221');
    expect(detectPowerSensor({ sysfsRoot: both, sensor: 'rapl' }).sensor?.source).toBe('rapl');
    const raplOnly = root();
    raplTree(raplOnly, 0);
    expect(detectPowerSensor({ sysfsRoot: raplOnly }).sensor?.source).toBe('rapl');
    const none = detectPowerSensor({ sysfsRoot: root() });
    expect(none.sensor).toBeNull();
    expect(none.notes.join('\n')).toMatch(/ina3221: .*\n.*rapl: .*\n.*model/);
    expect(detectPowerSensor({ sysfsRoot: both, sensor: 'off' }).sensor).toBeNull();
  });

  it('a demanded sensor that is absent is STRATA_ERR_SENSOR_UNAVAILABLE; bad options are named', () => {
    expect(() => detectPowerSensor({ sysfsRoot: root(), sensor: 'rapl' })).toThrow(
      expect.objectContaining({ code: 'STRATA_ERR_SENSOR_UNAVAILABLE' }),
    );
    expect(() => detectPowerSensor({ sensor: 'nvml' as never })).toThrow(
      expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option: 'sensor' }) }),
    );
  });
});
