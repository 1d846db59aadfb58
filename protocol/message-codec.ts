/**
 * Text frames <-> messages (messages.ts) at the socket boundary: parsing
 * with coded errors (size, JSON, type, protocol version, schema before any
 * use), encoding with the same schema, and the `error` message both ways.
 */
import { ProtocolError, isProtocolErrorCode, type ProtocolErrorCode } from './error-codes.js';
import { MessageSchema, PROTOCOL_VERSION, type ErrorMessage, type Message, type MessageType } from './messages.js';

export const MESSAGE_TYPES: readonly MessageType[] = Object.freeze(MessageSchema.options.map((o) => o.shape.type.value));
const KNOWN_TYPES: ReadonlySet<string> = new Set(MESSAGE_TYPES);
/** Messages whose protocolVersion is checked before the schema, so a peer of another version gets the version error. */
const VERSIONED_TYPES: ReadonlySet<string> = new Set(['hello', 'welcome']);

export type TextData = string | Uint8Array | ArrayBuffer | readonly Uint8Array[];

export interface ParseMessageOptions {
  /** Reject longer input with STRATA_ERR_FRAME_TOO_LARGE before parsing. */
  maxBytes?: number;
}

function toText(data: TextData): string {
  if (typeof data === 'string') return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return Buffer.concat(data as Uint8Array[]).toString('utf8');
}

function byteLengthOf(data: TextData): number {
  if (typeof data === 'string') return Buffer.byteLength(data, 'utf8');
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) return data.byteLength;
  return (data as Uint8Array[]).reduce((n, b) => n + b.byteLength, 0);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validate one text frame at the socket boundary. Throws ProtocolError:
 * too long -> FRAME_TOO_LARGE; not JSON -> MALFORMED_JSON; not an object with
 * a string `type` -> BAD_FRAME; unknown type -> UNKNOWN_TYPE; hello/welcome
 * of another version -> PROTOCOL_VERSION; schema violation -> BAD_FRAME.
 */
export function parseMessage(data: TextData, options: ParseMessageOptions = {}): Message {
  if (options.maxBytes !== undefined) {
    const length = typeof data === 'string' && data.length * 3 <= options.maxBytes ? data.length : byteLengthOf(data);
    if (length > options.maxBytes) {
      throw new ProtocolError('STRATA_ERR_FRAME_TOO_LARGE', `message of ${length} bytes exceeds ${options.maxBytes}`, {
        byteLength: length,
        maxBytes: options.maxBytes,
      });
    }
  }
  let raw: unknown;
  try {
    raw = JSON.parse(toText(data));
  } catch (err) {
    throw new ProtocolError('STRATA_ERR_MALFORMED_JSON', 'message is not valid JSON', {}, { cause: err });
  }
  if (!isPlainObject(raw) || typeof raw.type !== 'string') {
    throw new ProtocolError('STRATA_ERR_BAD_FRAME', 'message must be a JSON object with a string "type"', { reason: 'no-type' });
  }
  const type = raw.type;
  if (!KNOWN_TYPES.has(type)) {
    throw new ProtocolError('STRATA_ERR_UNKNOWN_TYPE', `unknown message type "${type.slice(0, 64)}"`, { type: type.slice(0, 64) });
  }
  if (VERSIONED_TYPES.has(type) && raw.protocolVersion !== PROTOCOL_VERSION) {
    throw new ProtocolError('STRATA_ERR_PROTOCOL_VERSION', `protocol version ${String(raw.protocolVersion)} is not supported (expected ${PROTOCOL_VERSION})`, {
      expected: PROTOCOL_VERSION,
      received: typeof raw.protocolVersion === 'number' ? raw.protocolVersion : null,
    });
  }
  const parsed = MessageSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 8).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
    const first = issues[0];
    throw new ProtocolError('STRATA_ERR_BAD_FRAME', `invalid "${type}" message${first ? `: ${first.path || '(root)'}: ${first.message}` : ''}`, {
      reason: 'schema',
      type,
      issues,
    });
  }
  return parsed.data;
}

/**
 * Serialize an outgoing message, validating it first so a bug on our side
 * surfaces here (STRATA_ERR_BAD_FRAME) instead of at the peer.
 */
export function encodeMessage(message: Message): string {
  const parsed = MessageSchema.safeParse(message);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProtocolError('STRATA_ERR_BAD_FRAME', `refusing to send an invalid "${String((message as { type?: unknown }).type)}" message`, {
      reason: 'schema',
      path: issue ? issue.path.map(String).join('.') : '',
      issue: issue?.message,
    });
  }
  return JSON.stringify(parsed.data);
}

/** The `error` message that reports a coded error to the peer. */
export function errorMessageFor(err: { code: string; message: string; details?: Readonly<Record<string, unknown>> }, roundId?: number): ErrorMessage {
  const message: ErrorMessage = { type: 'error', code: err.code, message: err.message.slice(0, 1024) };
  if (err.details && Object.keys(err.details).length > 0) message.details = jsonSafe(err.details);
  if (roundId !== undefined) message.roundId = roundId;
  return message;
}

/** Drop what JSON cannot carry (functions, cycles, bigints) from details. */
function jsonSafe(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  try {
    const text = JSON.stringify(details);
    return text.length <= 4096 ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Rebuild the ProtocolError an `error` message reports (unknown codes map to INTERNAL). */
export function protocolErrorFromMessage(message: ErrorMessage): ProtocolError {
  const code: ProtocolErrorCode = isProtocolErrorCode(message.code) ? message.code : 'STRATA_ERR_INTERNAL';
  return new ProtocolError(code, message.message, { ...(message.details ?? {}), remoteCode: message.code, roundId: message.roundId });
}
