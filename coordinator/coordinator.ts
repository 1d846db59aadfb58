import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { StrataError } from '../common/strata-error.js';
import { PROTOCOL_VERSION, ProtocolError, computeLayoutHash, toWireLimits, wsMaxPayload, type WeightsLayout } from '../protocol/index.js';
import type { CoordinatorStore } from '../storage-tier/coordinator-store.js';
import { AgentSession, type SessionHost } from './agent-session.js';
import { ClientRegistry } from './client-registry.js';
import { CoordinatorMetrics } from './coordinator-metrics.js';
import { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions } from './coordinator-options.js';
import { GlobalModel } from './global-model.js';
import { RoundEngine } from './round-engine.js';
import type { Evaluator, RoundSummary } from './round-engine-types.js';
import { createStrategy } from './strategies/index.js';
import { TokenAuthenticator } from './token-auth.js';
import { statusOf, type CoordinatorStatus } from './coordinator-status.js';

export type CoordinatorState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';
export const SERVER_VERSION = 'strata-coordinator/0.1.0';

export interface CoordinatorDeps {
  store: CoordinatorStore;
  /** Layout of the flat weight vector and the initial weights (used only for a new database). */
  layout: WeightsLayout;
  initialWeights: () => Float32Array;
  /** Evaluates a global model version (test accuracy); optional. */
  evaluate?: Evaluator;
  logger: Logger;
  onRoundCompleted?: (summary: RoundSummary) => void;
}

/**
 * The coordinator daemon: HTTP (`/healthz`, `/status`, `/metrics`) and the
 * agents' WebSocket on one port, optional TLS, token auth, and the round
 * engine over a persisted store. `finished` resolves when the configured
 * number of rounds is done; `stop()` drains.
 */
export class Coordinator {
  readonly options: CompiledCoordinatorOptions;
  readonly metrics = new CoordinatorMetrics();
  readonly #deps: CoordinatorDeps;
  readonly #log: Logger;
  readonly #auth: TokenAuthenticator | undefined;
  readonly #startedAt = Date.now();
  #state: CoordinatorState = 'created';
  #http: http.Server | https.Server | undefined;
  #wss: WebSocketServer | undefined;
  #engine: RoundEngine | undefined;
  #model: GlobalModel | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #port = 0;
  #stopping: Promise<void> | undefined;
  readonly #handshaking = new Set<AgentSession>();
  readonly #sessionHost: SessionHost;
  readonly finished: Promise<void>;
  #resolveFinished!: () => void;

  constructor(options: CoordinatorOptions, deps: CoordinatorDeps) {
    this.options = compileCoordinatorOptions(options);
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'coordinator' });
    this.#auth = this.options.tokens ? new TokenAuthenticator(this.options.tokens) : undefined;
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    this.#sessionHost = this.#makeSessionHost();
  }

  get state(): CoordinatorState { return this.#state; }
  get port(): number { return this.#port; }
  get url(): string { return `${this.options.tls ? 'wss' : 'ws'}://${this.options.host}:${this.#port}`; }
  get httpUrl(): string { return `${this.options.tls ? 'https' : 'http'}://${this.options.host}:${this.#port}`; }
  get model(): GlobalModel | undefined { return this.#model; }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new StrataError('STRATA_ERR_STATE', `coordinator cannot start in state ${this.#state}`);
    this.#state = 'starting';
    const { store, layout } = this.#deps;
    const layoutHash = computeLayoutHash(layout);
    let latest = store.latestModel();
    if (latest === undefined) {
      store.saveInitialModel(initialWeightsOf(this.#deps), layoutHash, Date.now());
      latest = store.latestModel()!;
    }
    if (latest.layoutHash !== layoutHash) {
      throw new StrataError('STRATA_ERR_LAYOUT_MISMATCH', `${store.file}: the database holds a model of layout ${latest.layoutHash}, this run's model is ${layoutHash}`, {
        file: store.file, stored: latest.layoutHash, expected: layoutHash,
      });
    }
    const strategy = createStrategy(this.options.strategy, this.options.strategyOptions);
    strategy.importState(latest.strategyState);
    this.#model = new GlobalModel(latest.weights, latest.version, layoutHash);
    const registry = new ClientRegistry(store);
    const engineLog = this.#log.child({ component: 'round-engine' });
    this.#engine = new RoundEngine({
      options: this.options, store, registry, strategy, metrics: this.metrics, model: this.#model, log: engineLog,
      evaluate: this.#deps.evaluate,
      ...(this.#deps.onRoundCompleted ? { onRoundCompleted: this.#deps.onRoundCompleted } : {}),
      onFinished: () => this.#resolveFinished(),
    });
    if (this.#auth === undefined) this.#log.warn('no tokens configured: any agent id is admitted');
    await this.#listen();
    this.#state = 'running';
    this.#log.info({ url: this.url, modelVersion: latest.version, strategy: strategy.name, params: this.#model.numParams }, 'coordinator listening');
    this.#engine.start(latest.accuracy === null ? null : { accuracy: latest.accuracy, loss: latest.loss ?? Number.NaN });
    const beat = this.options.limits.heartbeatMs;
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, Math.floor(beat / 2)));
    this.#sweeper.unref();
  }

  async #listen(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.#route(req, res);
    this.#http = this.options.tls ? https.createServer({ cert: this.options.tls.cert, key: this.options.tls.key }, handler) : http.createServer(handler);
    this.#wss = new WebSocketServer({ server: this.#http, maxPayload: wsMaxPayload(this.options.limits), perMessageDeflate: false });
    this.#wss.on('connection', (ws, req) => {
      this.metrics.connectionsTotal++;
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
      if (this.#state !== 'running') {
        ws.close(1001, 'STRATA_ERR_SHUTTING_DOWN');
        return;
      }
      this.#handshaking.add(new AgentSession(ws, this.#sessionHost, remote));
    });
    this.#http.listen(this.options.port, this.options.host);
    await Promise.race([
      once(this.#http, 'listening'),
      once(this.#http, 'error').then(([err]) => {
        throw new StrataError('STRATA_ERR_LISTEN', `cannot listen on ${this.options.host}:${this.options.port} (${(err as Error).message})`, { cause: err });
      }),
    ]);
    this.#port = (this.#http.address() as AddressInfo).port;
  }

  #makeSessionHost(): SessionHost {
    // Sessions log through this one logger with their ids as fields: no child logger per connection.
    const log = this.#log.child({ component: 'session' });
    return {
      limits: this.options.limits,
      maxErrorsPerConnection: this.options.maxErrorsPerConnection,
      log,
      authenticate: (agentId, token) => this.#auth === undefined ? typeof token === 'string' : this.#auth.verify(agentId, token),
      welcome: (s) => ({
        type: 'welcome', protocolVersion: PROTOCOL_VERSION, agentId: s.agentId, serverVersion: SERVER_VERSION,
        heartbeatMs: this.options.limits.heartbeatMs, limits: toWireLimits(this.options.limits),
        ...(s.features.length > 0 ? { features: [...s.features] } : {}),
      }),
      onReady: (s) => {
        this.#handshaking.delete(s);
        log.info({ remote: s.remote, agentId: s.agentId, profile: s.profile }, 'agent connected');
        this.#engine!.addSession(s);
      },
      onMessage: (s, m) => this.#engine!.onMessage(s, m),
      onBinary: (s, data) => this.#engine!.onBinary(s, data),
      onError: (s, err) => {
        this.metrics.bump(this.metrics.protocolErrors, err.code);
        log.debug({ remote: s.remote, ...(s.agentId === '' ? {} : { agentId: s.agentId }), code: err.code }, 'protocol error');
      },
      onClosed: (s, wasReady) => {
        this.#handshaking.delete(s);
        if (!wasReady) return;
        log.info({ remote: s.remote, agentId: s.agentId }, 'agent disconnected');
        this.#engine!.removeSession(s);
      },
    };
  }

  #sweep(): void {
    const now = Date.now();
    for (const s of this.#engine?.sessions.values() ?? []) {
      if (!s.paused && now - s.lastSeen > this.options.limits.heartbeatTimeoutMs) {
        s.fail(new ProtocolError('STRATA_ERR_HEARTBEAT_TIMEOUT', `silent for ${now - s.lastSeen} ms`));
      }
    }
  }

  #route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/healthz') {
      const ok = this.#state === 'running';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : `${this.#state}\n`);
    } else if (path === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(this.status())}\n`);
    } else if (path === '/metrics') {
      const st = this.status();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.render({
        connected_clients: st.connectedClients, known_clients: st.knownClients, model_version: st.modelVersion,
        round_id: st.roundId ?? 0, last_accuracy: st.lastAccuracy ?? Number.NaN, resident_memory_bytes: st.rssBytes, peak_resident_memory_bytes: st.peakRssBytes,
      }));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  status(): CoordinatorStatus {
    return statusOf(this.#state, this.#startedAt, this.options, this.metrics, this.#engine, this.#model);
  }

  /** Drain: stop accepting, let the open round finish (or leave it persisted), close every socket with STRATA_ERR_SHUTTING_DOWN. */
  stop(drainTimeoutMs = this.options.drainTimeoutMs): Promise<void> {
    this.#stopping ??= this.#stop(drainTimeoutMs);
    return this.#stopping;
  }

  async #stop(drainTimeoutMs: number): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'draining';
    this.#log.info({ drainTimeoutMs }, 'draining');
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (wasRunning && this.#engine) await this.#engine.drain(drainTimeoutMs);
    const bye = new ProtocolError('STRATA_ERR_SHUTTING_DOWN', 'coordinator shutting down');
    for (const s of [...(this.#engine?.sessions.values() ?? []), ...this.#handshaking]) s.fail(bye);
    if (this.#wss) {
      const wss = this.#wss;
      const timer = setTimeout(() => { for (const c of wss.clients) c.terminate(); }, 1000);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const c of wss.clients) c.terminate();
      clearTimeout(timer);
    }
    if (this.#http) {
      const server = this.#http;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.#state = 'stopped';
    this.#resolveFinished();
    this.#log.info('stopped');
  }
}

function initialWeightsOf(deps: CoordinatorDeps): Float32Array {
  const w = deps.initialWeights();
  if (w.length === 0) throw new StrataError('STRATA_ERR_BAD_OPTION', 'initial weights are empty');
  return w;
}
