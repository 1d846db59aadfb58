import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { StrataError } from '../common/strata-error.js';
import {
  PROTOCOL_VERSION, ProtocolError, SECURE_AGGREGATION_FEATURE, UPLOAD_GRANT_FEATURE, closeFrameFor, decodeWeightFrame, encodeMessage, encodeWeightFrame, parseMessage, protocolErrorFromClose,
  protocolErrorFromMessage, type Capabilities, type DeviceReport, type Joules, type Message, type ResultMetrics, type RoundAssignmentMessage, type UpdateAckMessage,
} from '../protocol/index.js';
import { privatizeUpdate } from '../privacy/device-privacy.js';
import { checkPrivacyFloor, effectiveDeviceDp, type PrivacyFloor } from '../privacy/privacy-floor.js';
import type { SecAggClient } from '../secure-aggregation/secagg-client.js';
import { AgentSecAgg } from './agent-secagg.js';
import { logEvent } from '../common/log-events.js';

/** What the continual-learning runtime returns for one assignment: new weights or a delta, and metrics. */
export interface TrainOutcome {
  weights?: Float32Array;
  delta?: Float32Array;
  metrics: ResultMetrics;
  joules?: Joules;
  energySource?: 'model' | 'rapl' | 'measured';
  /** What the device says about itself: its task, memory configuration, Miro's choice (sent with the result). */
  device?: DeviceReport;
}
export type TrainFn = (assignment: RoundAssignmentMessage, globalWeights: Float32Array, signal: AbortSignal) => Promise<TrainOutcome>;

export type AgentConnectionState = 'idle' | 'connecting' | 'ready' | 'backoff' | 'stopped';

export interface AgentConnectionOptions {
  /** `ws://HOST:PORT` or `wss://...`. */
  url: string;
  agentId: string;
  token: string;
  /** Device profile name. */
  profile: string;
  train: TrainFn;
  logger: Logger;
  /** Default: mlp + cnn models, no data set / CL method claims. */
  capabilities?: Capabilities;
  /** Reconnect backoff: delay = random(0, min(maxMs, initialMs x factor^attempt)) ("full jitter"). Defaults 250 ms, 30 s, 2. */
  backoff?: { initialMs?: number; maxMs?: number; factor?: number };
  /** Give up after this many failed connection attempts in a row. Default: never. */
  maxAttempts?: number;
  /** Extra CA (PEM) for `wss://` with a private certificate. */
  ca?: string | Buffer;
  /** Largest frame accepted from the coordinator. Default 64 MiB + header. */
  maxPayload?: number;
  /** Time from connect to welcome. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Offer the `upload-grant` feature (hold each update until the coordinator asks for it). Default true. */
  uploadGrants?: boolean;
  /** Offer secure aggregation (feature `secure-aggregation`). Default true. */
  secureAggregation?: boolean;
  /**
   * The least privacy this device takes part under: it leaves a coordinator
   * that runs less (STRATA_ERR_PRIVACY_FLOOR), and applies its own local DP
   * when the floor says `dp.mode: 'local'`. Default: none.
   */
  privacyFloor?: PrivacyFloor;
  /** Makes this device's part in each secure-aggregation round. Default `new SecAggClient(agentId, roundId)`. */
  secaggClient?: (agentId: string, roundId: number) => SecAggClient;
}

/** Close codes after which reconnecting cannot help. */
const FATAL_CODES: ReadonlySet<string> = new Set(['STRATA_ERR_AUTH', 'STRATA_ERR_PROTOCOL_VERSION', 'STRATA_ERR_SESSION_REPLACED', 'STRATA_ERR_SECAGG_UNSUPPORTED', 'STRATA_ERR_PRIVACY_FLOOR']);

/**
 * The agent's link to the coordinator: connect, hello/auth, reconnect with
 * exponential backoff and full jitter (also across coordinator restarts),
 * heartbeat, receive assignment + model frame, call `train`, send result +
 * update frame, await the ack. With the `upload-grant` feature (when the
 * coordinator's welcome enables it) the update frame waits for the
 * coordinator's `upload-grant`. An outcome survives a dropped connection: when
 * the coordinator re-assigns the same round and model, it is resent, not retrained.
 * Events: `state`, `welcome`, `assignment`, `ack` (UpdateAckMessage), `server-error` (ProtocolError), `bye` (ByeMessage: `final` when the
 * federation is complete; the connection still reconnects unless stopped), `fatal`.
 */
export class AgentConnection extends EventEmitter {
  readonly #o: AgentConnectionOptions;
  readonly #log: Logger;
  #state: AgentConnectionState = 'idle';
  #ws: WebSocket | undefined;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastHeard = 0;
  #heartbeatMs = 15_000;
  #assignment: RoundAssignmentMessage | undefined;
  #training: Promise<void> | undefined;
  #abort = new AbortController();
  #cached: { roundId: number; modelVersion: number; outcome: TrainOutcome; global: Float32Array } | undefined;
  /** Whether the current connection's welcome enabled upload grants. */
  #grants = false;
  /** A result sent on `ws` whose update frame waits for an `upload-grant`. */
  #offer: { ws: WebSocket; assignment: RoundAssignmentMessage; outcome: TrainOutcome; global: Float32Array } | undefined;
  readonly acks: UpdateAckMessage[] = [];
  /** This device's part in the secure-aggregation round it was last assigned. */
  readonly #secagg: AgentSecAgg;
  /** The assignment being trained. */
  #trainingFor: { roundId: number; modelVersion: number } | undefined;

  constructor(options: AgentConnectionOptions) {
    super();
    this.#o = options;
    this.#log = options.logger.child({ component: 'agent-connection', agentId: options.agentId });
    this.#secagg = new AgentSecAgg(options.agentId, this.#log, options.secaggClient);
  }

  get state(): AgentConnectionState { return this.#state; }

  start(): void {
    if (this.#state !== 'idle') throw new StrataError('STRATA_ERR_STATE', `agent connection cannot start in state ${this.#state}`);
    this.#connect();
  }

  /** Say bye, close, cancel timers and any training in flight (awaited). */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#setState('stopped');
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    this.#abort.abort();
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(encodeMessage({ type: 'bye', reason: 'agent stopping' }));
      ws.close(1000, 'bye');
    } else ws?.terminate();
    await this.#training?.catch(() => undefined);
  }

  #setState(s: AgentConnectionState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.emit('state', s);
  }

  #connect(): void {
    if (this.#state === 'stopped') return;
    this.#setState('connecting');
    const ws = new WebSocket(this.#o.url, {
      maxPayload: this.#o.maxPayload ?? 64 * 1024 * 1024 + 64, perMessageDeflate: false, handshakeTimeout: this.#o.handshakeTimeoutMs ?? 10_000,
      ...(this.#o.ca ? { ca: this.#o.ca } : {}),
    });
    this.#ws = ws;
    ws.on('open', () => {
      this.#lastHeard = Date.now();
      ws.send(encodeMessage({
        type: 'hello', protocolVersion: PROTOCOL_VERSION, agentId: this.#o.agentId, token: this.#o.token, profile: this.#o.profile,
        capabilities: this.#o.capabilities ?? { models: ['mlp', 'cnn'], datasets: [], clMethods: [] },
        features: [
          ...(this.#o.uploadGrants === false ? [] : [UPLOAD_GRANT_FEATURE]),
          ...(this.#o.secureAggregation === false ? [] : [SECURE_AGGREGATION_FEATURE]),
        ],
      }));
    });
    ws.on('message', (data, isBinary) => {
      if (ws !== this.#ws) return;
      this.#lastHeard = Date.now();
      try {
        if (isBinary) this.#onModelFrame(data as Buffer);
        else this.#onMessage(parseMessage(data as Buffer));
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, code: (err as StrataError).code }, 'bad message from the coordinator');
      }
    });
    ws.on('error', (err) => this.#log.debug({ err: err.message }, 'socket error'));
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString()));
  }

  #onMessage(m: Message): void {
    switch (m.type) {
      case 'welcome': {
        const weaker = this.#o.privacyFloor === undefined ? null : checkPrivacyFloor(this.#o.privacyFloor, m.privacy);
        if (weaker !== null) {
          this.#leave(weaker);
          return;
        }
        this.#attempt = 0;
        this.#heartbeatMs = m.heartbeatMs;
        this.#grants = this.#o.uploadGrants !== false && (m.features ?? []).includes(UPLOAD_GRANT_FEATURE);
        this.#startHeartbeat();
        this.#setState('ready');
        this.emit('welcome', m);
        return;
      }
      case 'round-assignment':
        this.#assignment = m;
        this.#startSecAgg(m);
        this.emit('assignment', m);
        return;
      case 'secagg-setup':
      case 'secagg-relay':
      case 'secagg-unmask': {
        const reply = this.#secagg.onMessage(m);
        if (reply !== undefined) this.#ws?.send(encodeMessage(reply));
        return;
      }
      case 'upload-grant':
        this.#onGrant(m.roundId);
        return;
      case 'update-ack':
        this.acks.push(m);
        if (this.#cached?.roundId === m.roundId) this.#cached = undefined;
        if (this.#offer?.assignment.roundId === m.roundId) this.#offer = undefined;
        this.emit('ack', m);
        return;
      case 'bye':
        // The coordinator is done with this connection; `final`: the federation is complete.
        this.#log.info({ ...logEvent('agent.bye-received'), reason: m.reason ?? null, final: m.final === true, roundsCompleted: m.roundsCompleted ?? null }, 'coordinator said bye');
        this.emit('bye', m);
        return;
      case 'error':
        if (m.roundId !== undefined && this.#offer?.assignment.roundId === m.roundId) this.#offer = undefined;
        this.emit('server-error', protocolErrorFromMessage(m));
        return;
      default:
        return;
    }
  }

  #onModelFrame(data: Buffer): void {
    const a = this.#assignment;
    if (a === undefined) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'model frame without an assignment');
    this.#assignment = undefined;
    // A new assignment supersedes an update still waiting for its grant.
    this.#offer = undefined;
    const { weights } = decodeWeightFrame(data, {
      kind: 'model', roundId: a.roundId, layoutHash: a.layoutHash, elementCount: a.numParams, checkFinite: true, copy: true,
    });
    if (this.#training !== undefined) {
      const t = this.#trainingFor;
      // The same round again on a new connection (secure aggregation: with a new session) is the one in training: it answers that.
      if (t?.roundId !== a.roundId || t.modelVersion !== a.modelVersion) this.#log.warn({ roundId: a.roundId }, 'assignment while still training; ignored');
      return;
    }
    const ws = this.#ws;
    this.#trainingFor = { roundId: a.roundId, modelVersion: a.modelVersion };
    this.#training = this.#run(a, weights, ws).catch((err: unknown) => {
      this.#log.error({ ...logEvent('agent.training-failed'), err: (err as Error).message, code: (err as StrataError).code, roundId: a.roundId }, 'training failed');
    }).finally(() => {
      this.#training = undefined;
    });
  }

  /** Leaves a coordinator that runs weaker privacy than this device's floor: coded, logged, no reconnect. */
  #leave(err: ProtocolError): void {
    this.#log.error({ code: err.code, ...err.details }, err.message);
    const ws = this.#ws;
    this.#setState('stopped');
    clearInterval(this.#heartbeat);
    this.emit('fatal', err);
    const close = closeFrameFor(err);
    if (ws !== undefined && ws.readyState === WebSocket.OPEN && close !== null) ws.close(close.code, close.reason);
  }

  /** A secure-aggregation round: fresh keys go to the coordinator at once, while the device trains. */
  #startSecAgg(a: RoundAssignmentMessage): void {
    const t = this.#trainingFor;
    if (this.#training !== undefined && (t?.roundId !== a.roundId || t.modelVersion !== a.modelVersion)) return;
    const keys = this.#secagg.begin(a, this.#o.secureAggregation !== false);
    if (keys !== undefined) this.#ws?.send(encodeMessage(keys));
  }

  async #run(a: RoundAssignmentMessage, global: Float32Array, ws: WebSocket | undefined): Promise<void> {
    if (this.#o.privacyFloor?.secureAggregation === true && a.secureAggregation === undefined) {
      this.#log.error({ code: 'STRATA_ERR_PRIVACY_FLOOR', roundId: a.roundId }, 'assignment without secure aggregation; this device requires it (not trained)');
      return;
    }
    const hit = this.#cached;
    let outcome: TrainOutcome;
    if (hit && hit.roundId === a.roundId && hit.modelVersion === a.modelVersion) {
      outcome = hit.outcome;
      this.#log.info({ roundId: a.roundId }, 'resending the outcome trained before the reconnect');
    } else {
      outcome = this.#privatized(a, await this.#o.train(a, global, this.#abort.signal), global);
      this.#cached = { roundId: a.roundId, modelVersion: a.modelVersion, outcome, global };
    }
    if (a.secureAggregation !== undefined && !(await this.#secagg.ready(a, () => this.#state === 'stopped'))) {
      this.#log.warn({ roundId: a.roundId }, 'secure aggregation session ended before this device could upload');
      return;
    }
    // The socket may have been replaced while training: send on the current one once it is welcomed
    // (else the outcome stays cached for the re-assignment that follows the reconnect).
    const current = this.#ws ?? ws;
    if (this.#state !== 'ready' || current === undefined || current.readyState !== WebSocket.OPEN) return;
    current.send(encodeMessage({
      type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: outcome.metrics,
      joules: outcome.joules ?? { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: outcome.energySource ?? 'model',
      ...(outcome.device !== undefined ? { device: outcome.device } : {}),
    }));
    if (this.#grants) this.#offer = { ws: current, assignment: a, outcome, global };
    else this.#sendUpdate(current, a, outcome, global);
  }

  #onGrant(roundId: number): void {
    const offer = this.#offer;
    if (offer === undefined || offer.assignment.roundId !== roundId || offer.ws !== this.#ws) {
      this.#log.debug({ roundId }, 'upload grant without an update waiting; ignored');
      return;
    }
    this.#offer = undefined;
    this.#sendUpdate(offer.ws, offer.assignment, offer.outcome, offer.global);
  }

  /** DP on the trained update, once (a resend is not noised again): the coordinator's ask merged with this device's own floor. */
  #privatized(a: RoundAssignmentMessage, outcome: TrainOutcome, global: Float32Array): TrainOutcome {
    const dp = effectiveDeviceDp(a.config.dp, this.#o.privacyFloor);
    if (dp === undefined) return outcome;
    const { delta } = privatizeUpdate(toKind('delta', outcome, global), dp);
    const { weights: _trained, ...rest } = outcome;
    return { ...rest, delta };
  }

  #sendUpdate(ws: WebSocket, a: RoundAssignmentMessage, outcome: TrainOutcome, global: Float32Array): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    const sa = a.secureAggregation;
    if (sa !== undefined) {
      const delta = toKind('delta', outcome, global);
      const weight = sa.weighting === 'samples' ? Math.max(1, outcome.metrics.numSamples) : 1;
      const masked = this.#secagg.mask(a.roundId, weight === 1 ? delta : delta.map((v) => v * weight), weight);
      if (masked === undefined) return;
      const { payload, clipped } = masked;
      if (clipped > 0) this.#log.warn({ roundId: a.roundId, clipped }, 'update coordinates clipped to the secure aggregation range');
      ws.send(encodeWeightFrame({
        kind: 'masked', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: outcome.metrics.numSamples,
      }, new Float32Array(payload.buffer, payload.byteOffset, payload.length)));
      return;
    }
    ws.send(encodeWeightFrame({
      kind: a.updateKind, roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: outcome.metrics.numSamples,
    }, toKind(a.updateKind, outcome, global)));
  }

  #startHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      const ws = this.#ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this.#lastHeard > 3 * this.#heartbeatMs) {
        this.#log.warn('coordinator silent; reconnecting');
        ws.terminate();
        return;
      }
      ws.send(encodeMessage({ type: 'heartbeat', sentAt: Date.now() }));
    }, this.#heartbeatMs);
    this.#heartbeat.unref();
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    clearInterval(this.#heartbeat);
    this.#assignment = undefined;
    // The outcome stays cached; a re-assignment after the reconnect offers it again.
    this.#offer = undefined;
    // A secure-aggregation session lives on one connection: a device waiting for its shares stops waiting.
    this.#secagg.connectionClosed();
    this.#grants = false;
    if (this.#state === 'stopped') return;
    const err = protocolErrorFromClose(code, reason);
    if (err && FATAL_CODES.has(err.code)) {
      this.#log.error({ code: err.code }, 'coordinator refused this agent; not reconnecting');
      this.#setState('stopped');
      this.emit('fatal', err);
      return;
    }
    this.#attempt++;
    if (this.#o.maxAttempts !== undefined && this.#attempt > this.#o.maxAttempts) {
      this.#setState('stopped');
      this.emit('fatal', new StrataError('STRATA_ERR_CONNECT', `gave up after ${this.#o.maxAttempts} attempts`));
      return;
    }
    const b = this.#o.backoff ?? {};
    const cap = Math.min(b.maxMs ?? 30_000, (b.initialMs ?? 250) * (b.factor ?? 2) ** (this.#attempt - 1));
    const delay = Math.floor(Math.random() * cap);
    this.#log.info({ ...logEvent('agent.reconnecting'), code, reason, attempt: this.#attempt, delayMs: delay }, 'connection closed; reconnecting');
    this.#setState('backoff');
    this.#timer = setTimeout(() => this.#connect(), delay);
  }
}

/** The vector the assignment asked for (`delta` = weights - global, or full `update` weights). */
function toKind(kind: 'update' | 'delta', o: TrainOutcome, global: Float32Array): Float32Array {
  if (kind === 'delta') {
    if (o.delta) return o.delta;
    if (!o.weights) throw new StrataError('STRATA_ERR_BAD_OPTION', 'train() returned neither weights nor delta');
    return o.weights.map((w, i) => w - global[i]!);
  }
  if (o.weights) return o.weights;
  if (!o.delta) throw new StrataError('STRATA_ERR_BAD_OPTION', 'train() returned neither weights nor delta');
  return o.delta.map((d, i) => d + global[i]!);
}
