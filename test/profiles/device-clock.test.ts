import { describe, expect, it } from 'vitest';
import { isStrataError } from '../../common/strata-error.js';
import { DeviceClock, loadProfile } from '../../profiles/index.js';
import { roundProfile } from './fixtures.js';

describe('DeviceClock', () => {
  it('scales compute by the speed factor', () => {
    const clock = new DeviceClock(roundProfile());
    expect(clock.compute(1.5)).toBeCloseTo(6, 12);
    expect(clock.hostSeconds).toBeCloseTo(1.5, 12);
    expect(clock.deviceSeconds).toBeCloseTo(6, 12);
    const nano = new DeviceClock(loadProfile('jetson-nano-5w'));
    expect(nano.compute(1.2)).toBeCloseTo(10, 12);
    const host = new DeviceClock(loadProfile('reference-host'));
    expect(host.compute(3)).toBe(3);
  });

  it('applies the host speed factor and a speed-factor override', () => {
    expect(new DeviceClock(roundProfile(), { hostSpeedFactor: 2 }).compute(1.5)).toBeCloseTo(12, 12);
    expect(new DeviceClock(roundProfile(), { speedFactor: 0.5 }).compute(1.5)).toBeCloseTo(3, 12);
  });

  it('adds storage as bytes over bandwidth plus requests times latency', () => {
    const clock = new DeviceClock(roundProfile());
    // read: 50 MB / 100 MB/s + 10 x 2 ms = 0.52 s; write: 25 MB / 50 MB/s + 5 x 2 ms = 0.51 s
    const s = clock.storage({ readBytes: 50e6, reads: 10, writeBytes: 25e6, writes: 5, hostSeconds: 0.1 });
    expect(s).toBeCloseTo(1.03, 12);
    const t = clock.snapshot();
    expect(t.storage.readSeconds).toBeCloseTo(0.52, 12);
    expect(t.storage.writeSeconds).toBeCloseTo(0.51, 12);
    expect(t.storage.readBytes).toBe(50e6);
    expect(t.storage.reads).toBe(10);
    expect(t.hostSeconds).toBeCloseTo(0.1, 12);
  });

  it('adds network as bytes over bandwidth plus round trips times RTT', () => {
    const clock = new DeviceClock(roundProfile());
    // up: 2 MB = 16 Mbit over 8 Mbit/s = 2 s; down: 4 MB = 32 Mbit over 16 Mbit/s = 2 s; 3 x 50 ms = 0.15 s
    expect(clock.network({ upBytes: 2e6, downBytes: 4e6, roundTrips: 3 })).toBeCloseTo(4.15, 12);
    const t = clock.snapshot();
    expect(t.network.upSeconds).toBeCloseTo(2, 12);
    expect(t.network.downSeconds).toBeCloseTo(2, 12);
    expect(t.network.rttSeconds).toBeCloseTo(0.15, 12);
    expect(t.network.roundTrips).toBe(3);
  });

  it('accumulates host and device seconds separately, and resets', () => {
    const clock = new DeviceClock(roundProfile());
    clock.compute(1.5);
    clock.storage({ readBytes: 50e6, reads: 10, writeBytes: 25e6, writes: 5 });
    clock.network({ upBytes: 2e6, downBytes: 4e6, roundTrips: 3, hostSeconds: 0.25 });
    clock.wait(2);
    const t = clock.snapshot();
    expect(t.deviceSeconds).toBeCloseTo(6 + 1.03 + 4.15 + 2, 12);
    expect(t.hostSeconds).toBeCloseTo(1.75, 12);
    expect(t.compute).toEqual({ hostSeconds: 1.5, deviceSeconds: 6 });
    expect(t.waitSeconds).toBe(2);
    expect(Object.isFrozen(t)).toBe(true);
    clock.reset();
    expect(clock.snapshot().deviceSeconds).toBe(0);
    expect(clock.hostSeconds).toBe(0);
  });

  it('measures a function on the host and accounts it as compute', async () => {
    const clock = new DeviceClock(roundProfile());
    const value = await clock.measure(async () => {
      await new Promise((r) => setTimeout(r, 30));
      return 42;
    });
    expect(value).toBe(42);
    expect(clock.hostSeconds).toBeGreaterThanOrEqual(0.025);
    expect(clock.deviceSeconds).toBeCloseTo(clock.hostSeconds * 4, 9);
  });

  it('rejects bad options and negative work with STRATA_ERR_BAD_OPTION naming it', () => {
    expect(() => new DeviceClock(roundProfile(), { hostSpeedFactor: 0 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
    try {
      new DeviceClock(roundProfile()).storage({ readBytes: -1 });
      expect.unreachable();
    } catch (err) {
      expect(isStrataError(err, 'STRATA_ERR_BAD_OPTION')).toBe(true);
      expect((err as { details: { option: string } }).details.option).toBe('readBytes');
    }
  });
});
