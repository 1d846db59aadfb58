import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
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
  type ProtocolLimits,
} from '../protocol/index.js';

export type SessionState = 'handshaking' | 'ready' | 'closed';

/** What a session needs from the coordinator. */
export interface SessionHost {
  readonly limits: ProtocolLimits;
  readonly maxErrorsPerConnection: number;
  /** Token check on the raw hello fields, before anything else is looked at. */
  authenticate(agentId: unknown, token: unknown): boolean;
  welcome(session: AgentSession): Message;
  onReady(session: AgentSession): void;
  onMessage(session: AgentSession, message: Message): void;
  onBinary(session: AgentSession, data: Buffer): void;
  onError(session: AgentSession, err: ProtocolError): void;
  onClosed(session: AgentSession): void;
}

/**
 * One agent connection: handshake (auth first, then protocol version, then
 * schema), rate limiting, validation of text frames at the boundary, coded
 * error replies; everything valid goes to the host.
 */
export class AgentSession {
  readonly #ws: WebSocket;
  readonly #host: SessionHost;
  readonly #rate: RateLimiter;
  readonly #handshakeTimer: NodeJS.Timeout;
  #log: Logger;
  #state: SessionState = 'handshaking';
  #errors = 0;
  #paused = false;
  agentId = '';
  profile = '';
  capabilities: Capabilities | undefined;
  /** Optional protocol features in use on this connection: the hello's, where this side knows them. */
  features: readonly string[] = [];
  lastSeen = Date.now();
  readonly remote: string;

  constructor(ws: WebSocket, host: SessionHost, log: Logger, remote: string) {
    this.#ws = ws;
    this.#host = host;
    this.#log = log;
    this.remote = remote;
    this.#rate = RateLimiter.fromLimits(host.limits);
    this.#handshakeTimer = setTimeout(() => {
      this.fail(new ProtocolError('STRATA_ERR_HANDSHAKE', `no hello within ${host.limits.handshakeTimeoutMs} ms`));
    }, host.limits.handshakeTimeoutMs);
    ws.on('message', (data, isBinary) => this.#onFrame(data as Buffer, isBinary));
    ws.on('close', () => this.#onClose());
    ws.on('error', (err) => this.#log.debug({ err: err.message }, 'socket error'));
  }

  get state(): SessionState {
    return this.#state;
  }

  get paused(): boolean {
    return this.#paused;
  }

  uses(feature: string): boolean {
    return this.features.includes(feature);
  }

  get log(): Logger {
    return this.#log;
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
    if (close) this.close(close.code, close.reason);
  }

  close(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#markClosed();
    this.#ws.close(code, reason);
    // A peer that never answers the close frame must not keep the socket.
    setTimeout(() => this.#ws.terminate(), 2000).unref();
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
      this.close(1000, 'bye');
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

  /** Counts an engine-side rejection (bad update) toward the error budget. */
  countError(): void {
    this.#errors++;
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
      this.#log.warn({ agentId: typeof hello['agentId'] === 'string' ? hello['agentId'].slice(0, 128) : null, remote: this.remote }, 'authentication failed');
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
    clearTimeout(this.#handshakeTimer);
    this.agentId = message.agentId;
    this.profile = message.profile;
    this.capabilities = message.capabilities;
    this.features = PROTOCOL_FEATURES.filter((f) => message.features?.includes(f));
    this.#log = this.#log.child({ agentId: this.agentId });
    this.#state = 'ready';
    this.send(this.#host.welcome(this));
    this.#host.onReady(this);
  }

  #markClosed(): void {
    if (this.#state === 'closed') return;
    const wasReady = this.#state === 'ready';
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    if (wasReady) this.#host.onClosed(this);
  }

  #onClose(): void {
    this.#markClosed();
  }
}
