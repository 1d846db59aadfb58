import { describe, expect, it } from 'vitest';
import {
  PROTOCOL_ERROR_CLOSE_CODES,
  ProtocolError,
  RateLimiter,
  WEIGHT_FRAME_HEADER_BYTES,
  closeCodeFor,
  closeFrameFor,
  compileProtocolLimits,
  isProtocolError,
  protocolErrorFromClose,
  toWireLimits,
  WireLimitsSchema,
} from '../../protocol/index.js';
import { StrataError, isStrataError } from '../../common/strata-error.js';

describe('compileProtocolLimits', () => {
  it('applies defaults: 64 MiB of weights, 50 msg/s burst 100', () => {
    const limits = compileProtocolLimits();
    expect(limits.maxParams).toBe(16 * 1024 * 1024);
    expect(limits.maxFrameBytes).toBe(64 * 1024 * 1024 + WEIGHT_FRAME_HEADER_BYTES);
    expect(limits).toMatchObject({ messagesPerSecond: 50, messageBurst: 100, heartbeatMs: 15_000, heartbeatTimeoutMs: 45_000 });
    expect(Object.isFrozen(limits)).toBe(true);
    expect(WireLimitsSchema.parse(toWireLimits(limits))).toEqual(toWireLimits(limits));
  });

  it('derives the frame size from maxParams and maxParams from the frame size', () => {
    expect(compileProtocolLimits({ maxParams: 100_000 }).maxFrameBytes).toBe(400_000 + WEIGHT_FRAME_HEADER_BYTES);
    expect(compileProtocolLimits({ maxFrameBytes: 1_000_040 }).maxParams).toBe(250_000);
  });

  it('names the bad option', () => {
    const cases: [object, string][] = [
      [{ maxParams: 0 }, 'maxParams'],
      [{ maxParams: 1.5 }, 'maxParams'],
      [{ maxParams: 1000, maxFrameBytes: 1000 }, 'maxFrameBytes'],
      [{ messagesPerSecond: -1 }, 'messagesPerSecond'],
      [{ messageBurst: Number.NaN }, 'messageBurst'],
      [{ heartbeatMs: 1000, heartbeatTimeoutMs: 500 }, 'heartbeatTimeoutMs'],
    ];
    for (const [options, option] of cases) {
      try {
        compileProtocolLimits(options);
        expect.unreachable(`expected ${option} to be rejected`);
      } catch (err) {
        expect(isStrataError(err, 'STRATA_ERR_BAD_OPTION')).toBe(true);
        expect((err as StrataError).details.option).toBe(option);
      }
    }
  });
});

describe('RateLimiter', () => {
  it('allows the burst, then refuses, then refills with time', () => {
    let now = 1_000;
    const limiter = new RateLimiter({ ratePerSecond: 50, burst: 100, now: () => now });
    for (let i = 0; i < 100; i++) expect(limiter.tryTake(), `message ${i}`).toBe(true);
    expect(limiter.tryTake()).toBe(false);
    expect(limiter.msUntilAvailable()).toBeCloseTo(20, 6);
    now += 10; // half a token
    expect(limiter.tryTake()).toBe(false);
    now += 10; // one token
    expect(limiter.tryTake()).toBe(true);
    expect(limiter.tryTake()).toBe(false);
    now += 1_000; // 50 tokens
    let allowed = 0;
    while (limiter.tryTake()) allowed++;
    expect(allowed).toBe(50);
    now += 60_000; // capped at the burst
    expect(limiter.available).toBe(100);
  });

  it('ignores a clock stepping backwards and refuses costs above the burst', () => {
    let now = 5_000;
    const limiter = RateLimiter.fromLimits(compileProtocolLimits({ messagesPerSecond: 10, messageBurst: 2 }), () => now);
    expect(limiter.tryTake(2)).toBe(true);
    now -= 1_000; // no credit for the step back (and no debt either)
    expect(limiter.available).toBe(0);
    expect(limiter.tryTake()).toBe(false);
    now += 50;
    expect(limiter.tryTake()).toBe(false);
    now += 50; // 100 ms counted from the stepped-back time = 1 token
    expect(limiter.tryTake()).toBe(true);
    expect(limiter.msUntilAvailable(3)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('error codes', () => {
  it('maps closing errors to valid WebSocket close codes and the rest to null', () => {
    expect(closeCodeFor('STRATA_ERR_AUTH')).toBe(4001);
    expect(closeCodeFor('STRATA_ERR_PROTOCOL_VERSION')).toBe(4002);
    expect(closeCodeFor('STRATA_ERR_FRAME_TOO_LARGE')).toBe(1009);
    expect(closeCodeFor('STRATA_ERR_RATE_LIMIT')).toBe(4008);
    expect(closeCodeFor('STRATA_ERR_HANDSHAKE')).toBe(1008);
    expect(closeCodeFor('STRATA_ERR_MALFORMED_JSON')).toBeNull();
    expect(closeCodeFor('STRATA_ERR_NOT_A_CODE')).toBeNull();
    expect(closeCodeFor('toString')).toBeNull();
    for (const [code, close] of Object.entries(PROTOCOL_ERROR_CLOSE_CODES)) {
      expect(code).toMatch(/^STRATA_ERR_[A-Z_]+$/);
      if (close !== null) expect(close === 1001 || close === 1008 || close === 1009 || close === 1011 || (close >= 4000 && close <= 4999), code).toBe(true);
    }
  });

  it('ProtocolError is a StrataError carrying its close code; closes map back', () => {
    const err = new ProtocolError('STRATA_ERR_RATE_LIMIT', 'too many messages', { rate: 50 });
    expect(err).toBeInstanceOf(StrataError);
    expect(isStrataError(err, 'STRATA_ERR_RATE_LIMIT')).toBe(true);
    expect(isProtocolError(err, 'STRATA_ERR_RATE_LIMIT')).toBe(true);
    expect(err.closeCode).toBe(4008);
    expect(closeFrameFor(err)).toEqual({ code: 4008, reason: 'STRATA_ERR_RATE_LIMIT' });
    expect(closeFrameFor(new ProtocolError('STRATA_ERR_NON_FINITE', 'x'))).toBeNull();
    expect(protocolErrorFromClose(4008, 'STRATA_ERR_RATE_LIMIT')?.code).toBe('STRATA_ERR_RATE_LIMIT');
    expect(protocolErrorFromClose(4001, '')?.code).toBe('STRATA_ERR_AUTH');
    expect(protocolErrorFromClose(1008, 'STRATA_ERR_TOO_MANY_ERRORS')?.code).toBe('STRATA_ERR_TOO_MANY_ERRORS');
    expect(protocolErrorFromClose(1000, 'bye')).toBeNull();
  });
});
