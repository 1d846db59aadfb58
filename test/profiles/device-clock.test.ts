import { describe, expect, it } from 'vitest';
import { isStrataError } from '../../common/strata-error.js';
import { DeviceClock, loadProfile, REFERENCE_HOST_GFLOPS } from '../../profiles/index.js';
import { roundProfile } from './fixtures.js';

describe('DeviceClock', () => {
  it('prices counted FLOPs at the profile\'s FLOP/s; host seconds ride along, unpriced', () => {
    const clock = new DeviceClock(roundProfile());
    expect(clock.compute({ flops: 12e9, hostSeconds: 1.5 })).toBeCloseTo(6, 12); // 12 GFLOP at 2 GFLOP/s
    expect(clock.hostSeconds).toBeCloseTo(1.5, 12);
    expect(clock.deviceSeconds).toBeCloseTo(6, 12);
    const nano = loadProfile('jetson-nano-5w');
    expect(new DeviceClock(nano).compute({ flops: 10 * nano.compute.gflops * 1e9 })).toBeCloseTo(10, 12);
    expect(new DeviceClock(loadProfile('reference-host')).compute({ flops: 3 * REFERENCE_HOST_GFLOPS * 1e9 })).toBeCloseTo(3, 12);
  });

  it('the same work costs the same device seconds whatever the host took, and gflops can be overridden', () => {
    const fast = new DeviceClock(roundProfile()).compute({ flops: 12e9, hostSeconds: 0.01 });
    const slow = new DeviceClock(roundProfile()).compute({ flops: 12e9, hostSeconds: 100 });
    expect(fast).toBe(slow);
    expect(new DeviceClock(roundProfile(), { gflops: 4 }).compute({ flops: 12e9 })).toBeCloseTo(3, 12);
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
    clock.compute({ flops: 12e9, hostSeconds: 1.5 });
    clock.storage({ readBytes: 50e6, reads: 10, writeBytes: 25e6, writes: 5 });
    clock.network({ upBytes: 2e6, downBytes: 4e6, roundTrips: 3, hostSeconds: 0.25 });
    clock.wait(2);
    const t = clock.snapshot();
    expect(t.deviceSeconds).toBeCloseTo(6 + 1.03 + 4.15 + 2, 12);
    expect(t.hostSeconds).toBeCloseTo(1.75, 12);
    expect(t.compute).toEqual({ hostSeconds: 1.5, deviceSeconds: 6, flops: 12e9 });
    expect(t.waitSeconds).toBe(2);
    expect(Object.isFrozen(t)).toBe(true);
    clock.reset();
    expect(clock.snapshot().deviceSeconds).toBe(0);
    expect(clock.hostSeconds).toBe(0);
  });

  it('rejects bad options and negative work with STRATA_ERR_BAD_OPTION naming it', () => {
    expect(() => new DeviceClock(roundProfile(), { gflops: 0 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
    expect(() => new DeviceClock(roundProfile()).compute({ flops: -1 })).toThrow(expect.objectContaining({ details: { option: 'flops' } }));
    try {
      new DeviceClock(roundProfile()).storage({ readBytes: -1 });
      expect.unreachable();
    } catch (err) {
      expect(isStrataError(err, 'STRATA_ERR_BAD_OPTION')).toBe(true);
      expect((err as { details: { option: string } }).details.option).toBe('readBytes');
    }
  });
});
