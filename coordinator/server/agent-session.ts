import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import {
  PROTOCOL_FEATURES,
  ProtocolError,
  RateLimiter,
  closeFrameFor,
  encodeMessage,
  errorMessageFor,
  parseMessage,
  type Capabilities,
  type HelloMessage,
  type Message,
  type ProtocolErrorCode,
  type ProtocolLimits,
  type RoundAssignmentMessage,
  type SecAggCoordinatorMessage,
} from '../../protocol/index.js';
import type { ClientLink } from '../client-link.js';

export type SessionState = 'handshaking' | 'ready' | 'closed';

/** What a session needs from the coordinator. */
export interface SessionHost {
  readonly limits: ProtocolLimits;
  readonly maxErrorsPerConnection: number;
  /** Sessions log through children of this one, made when they log (component `session`). */
  readonly log: Logger;
  /** Token check on the raw hello fields, before anything else is looked at. */
  authenticate(agentId: unknown, token: unknown): boolean;
  welcome(session: AgentSession): Message;
  onReady(session: AgentSession): void;
  onMessage(session: AgentSession, message: Message): void;
  onBinary(session: AgentSession, data: Buffer): void;
  onError(session: AgentSession, err: ProtocolError): void;
  /** The engine wants this session's update frame for `roundId` (bounded by the upload gate). */
  requestUpload(session: AgentSession, roundId: number): void;
  /** The engine no longer wants it. */
  withdrawUpload(session: AgentSession, roundId: number): void;
  /** The session is over; `wasReady` says whether it had been handed to onReady. */
  onClosed(session: AgentSession, wasReady: boolean): void;
}

const kSession = Symbol('strata.session');
type SessionSocket = WebSocket & { [kSession]?: AgentSession };

/**
 * One agent connection: handshake (auth first, then protocol version, then
 * schema), rate limiting, validation of text frames at the boundary, coded
 * error replies; everything valid goes to the host. Once ready it is the
 * round engine's link to that agent (`ClientLink`) over the wire.
 *
 * A coordinator holds a thousand of these for hours, so a session keeps no
 * closures, timers or loggers of its own once its handshake is done: the
 * socket's listeners are shared functions that find the session on the
 * socket, and `log` makes a child logger only when something is logged.
 */
export class AgentSession implements ClientLink {
  readonly #ws: SessionSocket;
  readonly #host: SessionHost;
  readonly #rate: RateLimiter;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #state: SessionState = 'handshaking';
  #errors = 0;
  #paused = false;
  agentId = '';
  profile = '';
  capabilities: Capabilities | undefined;
  /** Optional protocol features in use on this connection: the hello's, where this side knows them. */
  features: readonly string[] = NO_FEATURES;
  lastSeen = Date.now();
  readonly remote: string;

  constructor(ws: WebSocket, host: SessionHost, remote: string) {
    this.#ws = ws;
    this.#host = host;
    this.remote = remote;
    this.#rate = RateLimiter.fromLimits(host.limits);
    this.#handshakeTimer = setTimeout(AgentSession.#onHandshakeTimeout, host.limits.handshakeTimeoutMs, this);
    this.#ws[kSession] = this;
    ws.on('message', AgentSession.#onSocketMessage);
    ws.on('close', AgentSession.#onSocketClose);
    ws.on('error', AgentSession.#onSocketError);
  }

  static #onSocketMessage(this: SessionSocket, data: RawData, isBinary: boolean): void {
    const s = this[kSession];
    if (s !== undefined) s.#onFrame(data as Buffer, isBinary);
  }

  static #onSocketClose(this: SessionSocket): void {
    const s = this[kSession];
    if (s !== undefined) s.#markClosed();
  }

  static #onSocketError(this: SessionSocket, err: Error): void {
    this[kSession]?.log.debug({ err: err.message }, 'socket error');
  }

  static #onHandshakeTimeout(s: AgentSession): void {
    s.#handshakeTimer = undefined;
    s.fail(new ProtocolError('STRATA_ERR_HANDSHAKE', `no hello within ${s.#host.limits.handshakeTimeoutMs} ms`));
  }

  get state(): SessionState {
    return this.#state;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get clientId(): string {
    return this.agentId;
  }

  uses(feature: string): boolean {
    return this.features.includes(feature);
  }

  /** A child of the host's logger bound to this connection (made per call: sessions log rarely). */
  get log(): Logger {
    return this.#host.log.child(this.agentId === '' ? { remote: this.remote } : { remote: this.remote, agentId: this.agentId });
  }

  send(message: Message): void {
    if (this.#state === 'closed') return;
    this.#ws.send(encodeMessage(message));
  }

  sendBinary(frame: Buffer): void {
    if (this.#state === 'closed') return;
    this.#ws.send(frame, { binary: true });
  }

  /** Report a coded error; close when the code implies it. */
  fail(err: ProtocolError, roundId?: number): void {
    if (this.#state === 'closed') return;
    this.#host.onError(this, err);
    try {
      this.send(errorMessageFor(err, roundId));
    } catch {
      // The error itself could not be encoded: the close below still carries the code.
    }
    const close = closeFrameFor(err);
    if (close) this.closeWith(close.code, close.reason);
  }

  /** The coordinator is done with this agent for good (the federation is complete): `bye` with the reason, then a normal close. */
  bye(reason: string, details: { roundsCompleted: number }): void {
    if (this.#state === 'closed') return;
    this.send({ type: 'bye', reason, final: true, roundsCompleted: details.roundsCompleted });
    this.closeWith(1000, 'bye');
  }

  closeWith(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#markClosed();
    this.#ws.close(code, reason);
    // A peer that never answers the close frame must not keep the socket.
    setTimeout(() => this.#ws.terminate(), 2000).unref();
  }

  // ClientLink: what the round engine asks of this agent.

  assign(assignment: RoundAssignmentMessage, model: Buffer): void {
    this.send(assignment);
    this.sendBinary(model);
  }

  secagg(message: SecAggCoordinatorMessage): void {
    this.send(message);
  }

  requestUpdate(roundId: number): void {
    this.#host.requestUpload(this, roundId);
  }

  withdrawUpdate(roundId: number): void {
    this.#host.withdrawUpload(this, roundId);
  }

  ack(roundId: number, accepted: boolean, code?: ProtocolErrorCode): void {
    this.send(code === undefined ? { type: 'update-ack', roundId, accepted } : { type: 'update-ack', roundId, accepted, code });
  }

  refuse(err: ProtocolError, roundId?: number): void {
    this.#errors++;
    if (err.closeCode === null && this.#errors > this.#host.maxErrorsPerConnection) {
      this.fail(new ProtocolError('STRATA_ERR_TOO_MANY_ERRORS', `${this.#errors} bad messages`, { last: err.code }));
      return;
    }
    this.fail(err, roundId);
  }

  close(err: ProtocolError): void {
    this.fail(err);
  }

  /** Stop reading this socket (its bytes wait in the kernel) until resume(). */
  pause(): void {
    if (this.#paused || this.#state === 'closed') return;
    this.#paused = true;
    this.#ws.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.lastSeen = Date.now();
    if (this.#state !== 'closed') this.#ws.resume();
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    this.lastSeen = Date.now();
    if (this.#state === 'handshaking') {
      this.#handshake(data, isBinary);
      return;
    }
    if (!this.#rate.tryTake()) {
      this.fail(new ProtocolError('STRATA_ERR_RATE_LIMIT', `more than ${this.#host.limits.messagesPerSecond} messages/s (burst ${this.#host.limits.messageBurst})`));
      return;
    }
    if (isBinary) {
      this.#host.onBinary(this, data);
      return;
    }
    let message: Message;
    try {
      message = parseMessage(data, { maxBytes: this.#host.limits.maxTextBytes });
    } catch (err) {
      this.#badInput(err);
      return;
    }
    if (message.type === 'heartbeat') {
      this.send({ type: 'heartbeat', sentAt: Date.now() });
      return;
    }
    if (message.type === 'bye') {
      this.closeWith(1000, 'bye');
      return;
    }
    this.#host.onMessage(this, message);
  }

  /** A coded input error: answered; the connection survives up to maxErrorsPerConnection of them. */
  #badInput(err: unknown): void {
    if (!(err instanceof ProtocolError)) throw err;
    this.#errors++;
    if (err.closeCode === null && this.#errors > this.#host.maxErrorsPerConnection) {
      this.fail(new ProtocolError('STRATA_ERR_TOO_MANY_ERRORS', `${this.#errors} bad messages`, { last: err.code }));
      return;
    }
    this.fail(err);
  }

  #handshake(data: Buffer, isBinary: boolean): void {
    let raw: unknown;
    try {
      raw = isBinary ? undefined : JSON.parse(data.toString('utf8'));
    } catch {
      raw = undefined;
    }
    const hello = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
    if (hello?.['type'] !== 'hello') {
      this.fail(new ProtocolError('STRATA_ERR_HANDSHAKE', 'the first message must be a hello'));
      return;
    }
    // Credentials before anything else: an unauthenticated peer learns nothing more.
    if (!this.#host.authenticate(hello['agentId'], hello['token'])) {
      this.#host.log.warn({ agentId: typeof hello['agentId'] === 'string' ? hello['agentId'].slice(0, 128) : null, remote: this.remote }, 'authentication failed');
      this.fail(new ProtocolError('STRATA_ERR_AUTH', 'missing or wrong token'));
      return;
    }
    let message: HelloMessage;
    try {
      message = parseMessage(data, { maxBytes: this.#host.limits.maxTextBytes }) as HelloMessage;
    } catch (err) {
      if (err instanceof ProtocolError && err.code !== 'STRATA_ERR_PROTOCOL_VERSION') {
        this.fail(new ProtocolError('STRATA_ERR_HANDSHAKE', `bad hello: ${err.message}`, { cause: err.code }));
        return;
      }
      this.#badInput(err);
      return;
    }
    this.#clearHandshakeTimer();
    this.agentId = message.agentId;
    this.profile = message.profile;
    this.capabilities = shared(message.capabilities);
    this.features = featuresOf(message.features);
    this.#state = 'ready';
    this.send(this.#host.welcome(this));
    this.#host.onReady(this);
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer === undefined) return;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
  }

  #markClosed(): void {
    if (this.#state === 'closed') return;
    const wasReady = this.#state === 'ready';
    this.#state = 'closed';
    this.#clearHandshakeTimer();
    this.#host.onClosed(this, wasReady);
  }
}

const NO_FEATURES: readonly string[] = Object.freeze([]);
/** Agents of one build announce the same features and capabilities: their sessions share one frozen copy. */
const featureSets = new Map<string, readonly string[]>();
const capabilitySets = new Map<string, Capabilities>();
const MAX_SHARED = 64;

function featuresOf(announced: readonly string[] | undefined): readonly string[] {
  const known = PROTOCOL_FEATURES.filter((f) => announced?.includes(f));
  if (known.length === 0) return NO_FEATURES;
  return intern(featureSets, known.join(','), known);
}

function shared(c: Capabilities): Capabilities {
  for (const list of [c.models, c.datasets, c.clMethods]) Object.freeze(list);
  return intern(capabilitySets, JSON.stringify(c), c);
}

function intern<T extends object>(cache: Map<string, T>, key: string, value: T): T {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  if (cache.size < MAX_SHARED) cache.set(key, Object.freeze(value));
  return value;
}
