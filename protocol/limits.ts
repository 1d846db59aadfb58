import { StrataError } from '../common/strata-error.js';
import type { WireLimits } from './messages.js';
import { WEIGHT_FRAME_HEADER_BYTES } from './weight-frame.js';

/** Per-connection protocol limits. Every field is optional; see the defaults below. */
export interface ProtocolLimitsOptions {
  /** Largest model (float32 parameters) a weight frame may carry. Default 16 Mi (64 MiB payload). */
  maxParams?: number;
  /**
   * Largest binary frame in bytes. Default: header + 4 * maxParams. When only
   * this is given, maxParams is derived from it.
   */
  maxFrameBytes?: number;
  /** Largest JSON (text) message in bytes. Default 64 KiB. */
  maxTextBytes?: number;
  /** Sustained messages per second per connection (token-bucket rate). Default 50. */
  messagesPerSecond?: number;
  /** Token-bucket capacity: messages allowed in a burst. Default 100. */
  messageBurst?: number;
  /** Time allowed between connect and a valid hello. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Heartbeat interval announced in the welcome. Default 15 s. */
  heartbeatMs?: number;
  /** Silence after which a peer is considered gone. Default 3 x heartbeatMs. */
  heartbeatTimeoutMs?: number;
}

export type ProtocolLimits = Readonly<Required<ProtocolLimitsOptions>>;

export const DEFAULT_MAX_PARAMS = 16 * 1024 * 1024;
export const DEFAULT_MAX_TEXT_BYTES = 64 * 1024;
export const DEFAULT_MESSAGES_PER_SECOND = 50;
export const DEFAULT_MESSAGE_BURST = 100;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_HEARTBEAT_MS = 15_000;
/** Element counts travel as uint32. */
const MAX_UINT32 = 0xffff_ffff;

/** Bytes of a weight frame carrying `params` float32 values. */
export function weightFrameBytes(params: number): number {
  return WEIGHT_FRAME_HEADER_BYTES + 4 * params;
}

function badOption(option: string, message: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `protocol limits: ${option} ${message} (got ${String(value)})`, { option, value });
}

function checkInt(option: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badOption(option, `must be an integer in [${min}, ${max}]`, value);
  }
  return value;
}

function checkPositive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw badOption(option, 'must be a finite number > 0', value);
  return value;
}

/** Apply defaults, validate, and freeze. Bad options throw STRATA_ERR_BAD_OPTION naming the option. */
export function compileProtocolLimits(options: ProtocolLimitsOptions = {}): ProtocolLimits {
  let maxParams: number;
  let maxFrameBytes: number;
  if (options.maxParams !== undefined) {
    maxParams = checkInt('maxParams', options.maxParams, 1, MAX_UINT32);
    maxFrameBytes = checkInt('maxFrameBytes', options.maxFrameBytes ?? weightFrameBytes(maxParams), WEIGHT_FRAME_HEADER_BYTES + 4);
    if (maxFrameBytes < weightFrameBytes(maxParams)) {
      throw badOption('maxFrameBytes', `must be at least ${weightFrameBytes(maxParams)} to carry maxParams=${maxParams}`, maxFrameBytes);
    }
  } else if (options.maxFrameBytes !== undefined) {
    maxFrameBytes = checkInt('maxFrameBytes', options.maxFrameBytes, WEIGHT_FRAME_HEADER_BYTES + 4);
    maxParams = Math.min(MAX_UINT32, Math.floor((maxFrameBytes - WEIGHT_FRAME_HEADER_BYTES) / 4));
  } else {
    maxParams = DEFAULT_MAX_PARAMS;
    maxFrameBytes = weightFrameBytes(maxParams);
  }
  const maxTextBytes = checkInt('maxTextBytes', options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES, 256, 64 * 1024 * 1024);
  const messagesPerSecond = checkPositive('messagesPerSecond', options.messagesPerSecond ?? DEFAULT_MESSAGES_PER_SECOND);
  const messageBurst = checkInt('messageBurst', options.messageBurst ?? DEFAULT_MESSAGE_BURST, 1);
  const handshakeTimeoutMs = checkInt('handshakeTimeoutMs', options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1);
  const heartbeatMs = checkInt('heartbeatMs', options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, 1);
  const heartbeatTimeoutMs = checkInt('heartbeatTimeoutMs', options.heartbeatTimeoutMs ?? 3 * heartbeatMs, heartbeatMs);
  return Object.freeze({
    maxParams,
    maxFrameBytes,
    maxTextBytes,
    messagesPerSecond,
    messageBurst,
    handshakeTimeoutMs,
    heartbeatMs,
    heartbeatTimeoutMs,
  });
}

/**
 * The `maxPayload` to give a ws server/client: ws applies one cap to text and
 * binary frames alike, so text frames are re-checked with parseMessage's maxBytes.
 */
export function wsMaxPayload(limits: ProtocolLimits): number {
  return Math.max(limits.maxFrameBytes, limits.maxTextBytes);
}

/** The part of the limits a coordinator announces in its `welcome`. */
export function toWireLimits(limits: ProtocolLimits): WireLimits {
  return {
    maxFrameBytes: limits.maxFrameBytes,
    maxTextBytes: limits.maxTextBytes,
    maxParams: limits.maxParams,
    messagesPerSecond: limits.messagesPerSecond,
    messageBurst: limits.messageBurst,
  };
}

export interface RateLimiterOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Bucket capacity; the bucket starts full. */
  burst: number;
  /** Monotonic clock in milliseconds. Default `performance.now`. */
  now?: () => number;
}

/** One shared default clock: a limiter per connection, no closure per limiter. */
const monotonicNow = (): number => performance.now();

/**
 * Token bucket: `burst` messages at once, then `ratePerSecond` sustained.
 * One instance per connection; O(1) per message, no timers.
 */
export class RateLimiter {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(options: RateLimiterOptions) {
    this.ratePerSecond = checkPositive('ratePerSecond', options.ratePerSecond);
    this.burst = checkPositive('burst', options.burst);
    this.#now = options.now ?? monotonicNow;
    this.#tokens = this.burst;
    this.#last = this.#now();
  }

  static fromLimits(limits: ProtocolLimits, now?: () => number): RateLimiter {
    return new RateLimiter({ ratePerSecond: limits.messagesPerSecond, burst: limits.messageBurst, ...(now ? { now } : {}) });
  }

  #refill(): void {
    const t = this.#now();
    const elapsed = t - this.#last;
    // A clock that steps backwards adds nothing rather than draining the bucket.
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
    }
    this.#last = t;
  }

  /** Take `cost` tokens if available; false (and nothing taken) otherwise. */
  tryTake(cost = 1): boolean {
    this.#refill();
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return true;
    }
    return false;
  }

  /** Milliseconds until `cost` tokens will be available (0 when they are now). */
  msUntilAvailable(cost = 1): number {
    this.#refill();
    if (cost > this.burst) return Number.POSITIVE_INFINITY;
    const missing = cost - this.#tokens;
    return missing <= 0 ? 0 : (missing * 1000) / this.ratePerSecond;
  }

  /** Tokens available now (fractional). */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }
}
