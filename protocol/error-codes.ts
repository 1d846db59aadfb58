import { StrataError, type StrataErrorCode } from '../common/strata-error.js';

/**
 * Stable protocol error codes and the WebSocket close code each one implies.
 *
 * `null` means the connection stays open: the peer gets an `error` message
 * (or its update is rejected) and may carry on. A number means the sender of
 * the error closes the socket with that code and the error code as reason.
 * Codes 4000-4999 are the application range; 1008/1009/1001/1011 are the
 * standard RFC 6455 codes where one fits.
 */
export const PROTOCOL_ERROR_CLOSE_CODES = {
  /** Message or weight frame fails structural/schema validation. */
  STRATA_ERR_BAD_FRAME: null,
  /** Missing or wrong token. */
  STRATA_ERR_AUTH: 4001,
  /** Peer speaks another protocol (or weight-frame) version. */
  STRATA_ERR_PROTOCOL_VERSION: 4002,
  /** No hello first, or none before the handshake timeout. */
  STRATA_ERR_HANDSHAKE: 1008,
  /** No heartbeat/traffic within the heartbeat timeout. */
  STRATA_ERR_HEARTBEAT_TIMEOUT: 4004,
  /** Well-formed JSON object whose `type` this protocol version does not know. */
  STRATA_ERR_UNKNOWN_TYPE: null,
  /** Text frame that is not JSON. */
  STRATA_ERR_MALFORMED_JSON: null,
  /** Frame larger than the negotiated limit. */
  STRATA_ERR_FRAME_TOO_LARGE: 1009,
  /** Message rate over the per-connection token bucket. */
  STRATA_ERR_RATE_LIMIT: 4008,
  /** Another connection authenticated as the same agent id. */
  STRATA_ERR_SESSION_REPLACED: 4009,
  /** The peer keeps sending bad input; the connection is dropped. */
  STRATA_ERR_TOO_MANY_ERRORS: 1008,
  /** Valid message at a moment it is not allowed (e.g. result before assignment). */
  STRATA_ERR_UNEXPECTED_MESSAGE: null,
  /** Update element count differs from the model's. */
  STRATA_ERR_BAD_UPDATE_LENGTH: null,
  /** NaN or +-Infinity in a weight payload. */
  STRATA_ERR_NON_FINITE: null,
  /** Update norm above the configured bound. */
  STRATA_ERR_UPDATE_NORM: null,
  /** Update or result for a round that is not the open one. */
  STRATA_ERR_STALE_ROUND: null,
  /** Weight payload checksum mismatch. */
  STRATA_ERR_BAD_CHECKSUM: null,
  /** Weight frame layout hash differs from the model's. */
  STRATA_ERR_LAYOUT_MISMATCH: null,
  /** A weights layout description is itself invalid (empty name, bad dim). */
  STRATA_ERR_BAD_LAYOUT: null,
  /** The coordinator runs secure aggregation; this agent does not offer it. */
  STRATA_ERR_SECAGG_UNSUPPORTED: 4010,
  /** A secure-aggregation share or box that is wrong: refused, the round goes on without it. */
  STRATA_ERR_SECAGG_BAD_SHARE: null,
  /** The agent's privacy floor is above what the coordinator runs: the agent leaves. */
  STRATA_ERR_PRIVACY_FLOOR: 4011,
  /** The coordinator is shutting down. */
  STRATA_ERR_SHUTTING_DOWN: 1001,
  /** Unexpected failure on the sending side. */
  STRATA_ERR_INTERNAL: 1011,
} as const satisfies Partial<Record<StrataErrorCode, number | null>>;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERROR_CLOSE_CODES;

export const PROTOCOL_ERROR_CODES = Object.freeze(Object.keys(PROTOCOL_ERROR_CLOSE_CODES)) as readonly ProtocolErrorCode[];

export function isProtocolErrorCode(code: unknown): code is ProtocolErrorCode {
  return typeof code === 'string' && Object.hasOwn(PROTOCOL_ERROR_CLOSE_CODES, code);
}

/** The close code an error implies, or null when the connection stays open. Unknown codes: null. */
export function closeCodeFor(code: string): number | null {
  return isProtocolErrorCode(code) ? PROTOCOL_ERROR_CLOSE_CODES[code] : null;
}

export class ProtocolError extends StrataError {
  declare readonly code: ProtocolErrorCode;
  /** WebSocket close code to use, or null when the connection stays open. */
  readonly closeCode: number | null;

  constructor(code: ProtocolErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
    this.name = 'ProtocolError';
    this.closeCode = PROTOCOL_ERROR_CLOSE_CODES[code];
  }

  get closesConnection(): boolean {
    return this.closeCode !== null;
  }
}

export function isProtocolError(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
  return err instanceof ProtocolError && (code === undefined || err.code === code);
}

/**
 * Close frame arguments for an error that closes the connection: the reason is
 * the stable error code (always well under the 123-byte close-reason limit),
 * so the peer can map the close back to a code with `protocolErrorFromClose`.
 */
export function closeFrameFor(err: ProtocolError): { code: number; reason: string } | null {
  return err.closeCode === null ? null : { code: err.closeCode, reason: err.code };
}

/** Map a received close (code + reason) back to a ProtocolError, or null for a plain close. */
export function protocolErrorFromClose(closeCode: number, reason: string): ProtocolError | null {
  if (isProtocolErrorCode(reason)) {
    return new ProtocolError(reason, `connection closed by peer: ${reason}`, { closeCode });
  }
  for (const code of PROTOCOL_ERROR_CODES) {
    // Application-range codes are unique to one error; 1008 etc. are shared, so only map 4xxx.
    if (closeCode >= 4000 && PROTOCOL_ERROR_CLOSE_CODES[code] === closeCode) {
      return new ProtocolError(code, `connection closed by peer with ${closeCode}`, { closeCode, reason });
    }
  }
  return null;
}
