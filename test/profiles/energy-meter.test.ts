import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceClock, EnergyMeter, loadProfile, modelEnergy } from '../../profiles/index.js';
import { INA_IIO, RAPL, roundProfile, tempRoot, writeTree } from './fixtures.js';

const roots: string[] = [];
function root(): string {
  const r = tempRoot('strata-meter-');
  roots.push(r);
  return r;
}
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** The work of the device-clock tests: 6 s compute (12 GFLOP at 2 GFLOP/s; 1.5 host seconds, a diagnostic), 1.03 s storage, 4.15 s network, 2 s wait. */
function account(clock: DeviceClock): void {
  clock.compute({ flops: 12e9, hostSeconds: 1.5 });
  clock.storage({ readBytes: 50e6, reads: 10, writeBytes: 25e6, writes: 5 });
  clock.network({ upBytes: 2e6, downBytes: 4e6, roundTrips: 3 });
  clock.wait(2);
}

describe('modelEnergy', () => {
  it('integrates the power model over device time (hand-computed joules)', () => {
    const clock = new DeviceClock(roundProfile());
    account(clock);
    const e = modelEnergy(clock.snapshot(), roundProfile().power);
    expect(e.compute).toBeCloseTo(4 * 6, 9); // 24 J
    expect(e.storage).toBeCloseTo(0.5 * 1.03, 9); // 0.515 J
    expect(e.radio).toBeCloseTo(2 * 2 + 1 * (2 + 0.15), 9); // 6.15 J
    expect(e.idle).toBeCloseTo(1 * 13.18, 9); // 13.18 J
    expect(e.total).toBeCloseTo(43.845, 9);
  });

  it('a jetson-nano-5w training second costs (idle + compute) x FLOPs / its FLOP/s', () => {
    const nano = loadProfile('jetson-nano-5w');
    const meter = new EnergyMeter(nano, { sensor: 'off' });
    meter.clock.compute({ flops: 5 * nano.compute.gflops * 1e9 }); // 5 device seconds
    const r = meter.report();
    expect(r.deviceSeconds).toBeCloseTo(5, 9);
    expect(r.components.compute.joules).toBeCloseTo(nano.power.computeW * 5, 9);
    expect(r.components.idle.joules).toBeCloseTo(nano.power.idleW * 5, 9);
    expect(r.modelledJoules).toBeCloseTo((nano.power.computeW + nano.power.idleW) * 5, 9);
  });
});

describe('EnergyMeter', () => {
  it('falls back to the model when there are no sensors, and says so', () => {
    const meter = new EnergyMeter(roundProfile(), { sysfsRoot: root() });
    expect(meter.sensor).toBeNull();
    meter.start();
    account(meter.clock);
    const r = meter.stop();
    expect(r.measured).toBeNull();
    expect(r.total).toEqual({ joules: expect.closeTo(43.845, 9), source: 'model' });
    expect(r.components.compute).toEqual({ joules: expect.closeTo(24, 9), source: 'model' });
    expect(r.components.radio.source).toBe('model');
    expect(r.hostSeconds).toBeCloseTo(1.5, 9);
    expect(r.deviceSeconds).toBeCloseTo(13.18, 9);
    expect(r.sensorNotes.join(' ')).toMatch(/no power sensor/);
  });

  it('with INA3221 reports both measured and modelled joules, and which is which', () => {
    const r0 = root();
    writeTree(r0, {
      [`${INA_IIO}/rail_name_0`]: 'POM_5V_IN',
      [`${INA_IIO}/in_power0_input`]: 2000,
      [`${INA_IIO}/rail_name_1`]: 'POM_5V_CPU',
      [`${INA_IIO}/in_power1_input`]: 1000,
    });
    let t = 0;
    const meter = new EnergyMeter(roundProfile(), { sysfsRoot: r0, sampleIntervalMs: 0, now: () => t });
    expect(meter.sensor?.source).toBe('ina3221');
    meter.start();
    account(meter.clock);
    t = 1000;
    meter.poll();
    writeFileSync(path.join(r0, INA_IIO, 'in_power0_input'), '4000\n');
    t = 2000;
    const r = meter.stop(); // 2 W x 1 s + (2 W + 4 W) / 2 x 1 s = 5 J
    expect(r.measured?.source).toBe('ina3221');
    expect(r.measured?.joules).toBeCloseTo(5, 9);
    expect(r.measured?.channels.POM_5V_CPU).toBeCloseTo(2, 9);
    expect(r.measured?.seconds).toBe(2);
    expect(r.modelledJoules).toBeCloseTo(43.845, 9);
    expect(r.total.source).toBe('model');

    // Restarting adds a second window; `total: 'measured'` makes the sensor the headline.
    const m2 = new EnergyMeter(roundProfile(), { sysfsRoot: r0, sampleIntervalMs: 0, now: () => t, total: 'measured' });
    m2.start();
    t = 3000; // 4 W x 1 s
    const first = m2.stop();
    expect(first.total).toEqual({ joules: expect.closeTo(4, 9), source: 'ina3221' });
    m2.start();
    t = 3500; // 4 W x 0.5 s
    expect(m2.report().measured?.joules).toBeCloseTo(6, 9); // read while running
    expect(m2.stop().measured?.joules).toBeCloseTo(6, 9);
  });

  it('with RAPL reports the measured package energy', () => {
    const r0 = root();
    writeTree(r0, {
      [`${RAPL}/intel-rapl:0/name`]: 'package-0',
      [`${RAPL}/intel-rapl:0/energy_uj`]: 100,
      [`${RAPL}/intel-rapl:0/max_energy_range_uj`]: 1_000_000,
    });
    let t = 0;
    const meter = new EnergyMeter(roundProfile(), { sysfsRoot: r0, sampleIntervalMs: 0, now: () => t });
    meter.start();
    writeFileSync(path.join(r0, RAPL, 'intel-rapl:0/energy_uj'), '900100\n');
    t = 500;
    meter.poll();
    writeFileSync(path.join(r0, RAPL, 'intel-rapl:0/energy_uj'), '200000\n'); // wrapped: (1e6 - 900100) + 200000 uJ = 0.2999 J
    t = 1000;
    const r = meter.stop();
    expect(r.measured?.source).toBe('rapl');
    expect(r.measured?.joules).toBeCloseTo(0.9 + 0.2999, 9);
  });

  it('polls on its own timer while running', async () => {
    const r0 = root();
    writeTree(r0, { [`${INA_IIO}/rail_name_0`]: 'POM_5V_IN', [`${INA_IIO}/in_power0_input`]: 1000 });
    const meter = new EnergyMeter(roundProfile(), { sysfsRoot: r0, sampleIntervalMs: 5 });
    meter.start();
    await new Promise((r) => setTimeout(r, 60));
    const r = meter.stop();
    expect(r.measured?.samples).toBeGreaterThan(3);
    // 1 W for about the time it ran.
    expect(r.measured?.joules).toBeCloseTo(r.measured?.seconds ?? -1, 6);
    expect(r.measured?.seconds).toBeGreaterThanOrEqual(0.05);
  });

  it('guards its state and its options', () => {
    const meter = new EnergyMeter(roundProfile(), { sensor: 'off' });
    expect(() => meter.stop()).toThrow(expect.objectContaining({ code: 'STRATA_ERR_STATE' }));
    meter.start();
    expect(() => meter.start()).toThrow(expect.objectContaining({ code: 'STRATA_ERR_STATE' }));
    expect(meter.stop().measured).toBeNull();
    expect(meter.state).toBe('stopped');
    expect(() => new EnergyMeter(roundProfile(), { sampleIntervalMs: -1 })).toThrow(
      expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: { option: 'sampleIntervalMs' } }),
    );
    expect(() => new EnergyMeter(roundProfile(), { total: 'guess' as never })).toThrow(
      expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }),
    );
  });
});
