import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { StrataError } from '../../common/strata-error.js';
import { PROTOCOL_VERSION, ProtocolError, toWireLimits, wsMaxPayload, type Message, type PrivacySettings, type ProtocolLimits } from '../../protocol/index.js';
import type { CoordinatorMetrics } from '../coordinator-metrics.js';
import { AgentSession, type SessionHost } from './agent-session.js';
import { DashboardFeed } from './dashboard-feed.js';
import { PayloadLender, lendingWebSocket } from './lent-payloads.js';
import { chartJsBundle, dashboardHtml } from './dashboard-page.js';
import { TokenAuthenticator, tokenDigest } from './token-auth.js';
import { UploadGate } from './upload-gate.js';
import { logEvent } from '../../common/log-events.js';

export const SERVER_VERSION = 'strata-coordinator/0.1.0';

export interface CoordinatorServerOptions {
  host: string;
  port: number;
  tls: { cert: string | Buffer; key: string | Buffer } | undefined;
  tokens: ReadonlyMap<string, string> | undefined;
  limits: ProtocolLimits;
  maxErrorsPerConnection: number;
  maxConcurrentUploads: number;
  /** Read-only token of the dashboard (`/`, `/events`) and `/status`; undefined: they are open. */
  dashboardToken: string | undefined;
  /** The privacy the coordinator runs, told to every agent in its welcome (absent: none). */
  privacy?: PrivacySettings | undefined;
}

/** What the server hands on: ready sessions and their valid messages (to the round engine), and what its HTTP routes show. */
export interface ServerHandlers {
  onReady(session: AgentSession): void;
  onMessage(session: AgentSession, message: Message): void;
  onBinary(session: AgentSession, data: Buffer): void;
  onClosed(session: AgentSession): void;
  /** `/healthz`: ok, or the state to report. */
  health(): { ok: boolean; state: string };
  status(): unknown;
  /** Completed rounds, for the dashboard's charts. */
  history(): unknown[];
  metricsText(): Promise<string>;
}

/**
 * The daemon's transport: HTTP (`/healthz`, `/metrics`; the live dashboard
 * `/` with its event stream `/events`, and `/status`, behind the dashboard
 * token) and the agents' WebSocket on one port, optional TLS, token auth, the
 * upload gate (at most K update frames in flight), the heartbeat sweep, and
 * the one buffer large update frames are read into (lent-payloads.ts).
 * Every ready session is the round engine's `ClientLink` to its agent.
 */
export class CoordinatorServer {
  readonly #o: CoordinatorServerOptions;
  readonly #log: Logger;
  readonly #metrics: CoordinatorMetrics;
  readonly #handlers: ServerHandlers;
  readonly #auth: TokenAuthenticator | undefined;
  readonly #gate: UploadGate;
  readonly #handshaking = new Set<AgentSession>();
  readonly #ready = new Set<AgentSession>();
  readonly #sessionHost: SessionHost;
  readonly #dashboardDigest: Buffer | undefined;
  readonly feed: DashboardFeed;
  /** The buffer large update frames are read into, reused message after message. */
  readonly payloads = new PayloadLender();
  #http: http.Server | https.Server | undefined;
  #wss: WebSocketServer | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #accepting = false;
  #port = 0;

  constructor(options: CoordinatorServerOptions, handlers: ServerHandlers, metrics: CoordinatorMetrics, logger: Logger) {
    this.#o = options;
    this.#handlers = handlers;
    this.#metrics = metrics;
    this.#log = logger;
    this.#auth = options.tokens ? new TokenAuthenticator(options.tokens) : undefined;
    this.#gate = new UploadGate(options.maxConcurrentUploads);
    this.#sessionHost = this.#makeSessionHost();
    this.#dashboardDigest = options.dashboardToken === undefined ? undefined : tokenDigest(options.dashboardToken);
    this.feed = new DashboardFeed({ status: () => handlers.status(), history: () => handlers.history() });
  }

  get port(): number { return this.#port; }
  get url(): string { return `${this.#o.tls ? 'wss' : 'ws'}://${this.#o.host}:${this.#port}`; }
  get httpUrl(): string { return `${this.#o.tls ? 'https' : 'http'}://${this.#o.host}:${this.#port}`; }
  get authenticates(): boolean { return this.#auth !== undefined; }
  get dashboardProtected(): boolean { return this.#dashboardDigest !== undefined; }

  async listen(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.#route(req, res);
    this.#http = this.#o.tls ? https.createServer({ cert: this.#o.tls.cert, key: this.#o.tls.key }, handler) : http.createServer(handler);
    this.#wss = new WebSocketServer({
      server: this.#http, maxPayload: wsMaxPayload(this.#o.limits), perMessageDeflate: false,
      // Update frames are read into one reused buffer (lent-payloads.ts); a message is handled before the next is read.
      WebSocket: lendingWebSocket(this.payloads), allowSynchronousEvents: true,
    });
    this.#wss.on('connection', (ws, req) => {
      this.#metrics.connectionAccepted();
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
      if (!this.#accepting) {
        ws.close(1001, 'STRATA_ERR_SHUTTING_DOWN');
        return;
      }
      this.#handshaking.add(new AgentSession(ws, this.#sessionHost, remote));
    });
    this.#http.listen(this.#o.port, this.#o.host);
    await Promise.race([
      once(this.#http, 'listening'),
      once(this.#http, 'error').then(([err]) => {
        throw new StrataError('STRATA_ERR_LISTEN', `cannot listen on ${this.#o.host}:${this.#o.port} (${(err as Error).message})`, { cause: err });
      }),
    ]);
    this.#port = (this.#http.address() as AddressInfo).port;
    this.#accepting = true;
    const beat = this.#o.limits.heartbeatMs;
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, Math.floor(beat / 2)));
    this.#sweeper.unref();
  }

  #makeSessionHost(): SessionHost {
    // Sessions log through this one logger with their ids as fields: no child logger per connection.
    const log = this.#log.child({ component: 'session' });
    return {
      limits: this.#o.limits,
      maxErrorsPerConnection: this.#o.maxErrorsPerConnection,
      log,
      authenticate: (agentId, token) => this.#auth === undefined ? typeof token === 'string' : this.#auth.verify(agentId, token),
      welcome: (s) => ({
        type: 'welcome', protocolVersion: PROTOCOL_VERSION, agentId: s.agentId, serverVersion: SERVER_VERSION,
        heartbeatMs: this.#o.limits.heartbeatMs, limits: toWireLimits(this.#o.limits),
        ...(s.features.length > 0 ? { features: [...s.features] } : {}),
        ...(this.#o.privacy !== undefined ? { privacy: this.#o.privacy } : {}),
      }),
      onReady: (s) => {
        this.#handshaking.delete(s);
        this.#ready.add(s);
        log.info({ ...logEvent('coordinator.agent-connected'), remote: s.remote, agentId: s.agentId, profile: s.profile }, 'agent connected');
        this.#handlers.onReady(s);
      },
      onMessage: (s, m) => this.#handlers.onMessage(s, m),
      onBinary: (s, data) => {
        try {
          this.#handlers.onBinary(s, data);
        } finally {
          // After the intake: if this update closed the round, nobody is granted an upload it no longer needs.
          this.#gate.release(s);
        }
      },
      onError: (s, err) => {
        this.#metrics.protocolError(err.code);
        log.debug({ remote: s.remote, ...(s.agentId === '' ? {} : { agentId: s.agentId }), code: err.code }, 'protocol error');
      },
      requestUpload: (s, roundId) => this.#gate.request(s, roundId),
      withdrawUpload: (s, roundId) => this.#gate.withdraw(s, roundId),
      onClosed: (s, wasReady) => {
        this.#handshaking.delete(s);
        if (!wasReady) return;
        this.#ready.delete(s);
        this.#gate.release(s);
        log.info({ remote: s.remote, agentId: s.agentId }, 'agent disconnected');
        this.#handlers.onClosed(s);
      },
    };
  }

  #sweep(): void {
    const now = Date.now();
    for (const s of this.#ready) {
      if (!s.paused && now - s.lastSeen > this.#o.limits.heartbeatTimeoutMs) {
        s.fail(new ProtocolError('STRATA_ERR_HEARTBEAT_TIMEOUT', `silent for ${now - s.lastSeen} ms`));
      }
    }
  }

  #route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://coordinator');
    const path = url.pathname;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/healthz') {
      const h = this.#handlers.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(h.ok ? 'ok\n' : `${h.state}\n`);
    } else if (path === '/metrics') {
      this.#handlers.metricsText().then(
        (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
        (err: unknown) => {
          this.#log.error({ err }, 'rendering /metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        },
      );
    } else if (path === '/assets/chart.umd.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=86400' }).end(chartJsBundle());
    } else if (path === '/' || path === '/status' || path === '/events') {
      if (!this.#dashboardAllowed(req, url, res)) return;
      if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(dashboardHtml());
      else if (path === '/status') res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(this.#handlers.status())}\n`);
      else this.feed.subscribe(req, res);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  /**
   * The dashboard token, from `Authorization: Bearer`, the page's cookie, or
   * `?token=` (which sets the cookie, so the page and its event stream carry
   * it). Compared in constant time. A refusal is a 401 with code STRATA_ERR_AUTH.
   */
  #dashboardAllowed(req: http.IncomingMessage, url: URL, res: http.ServerResponse): boolean {
    const expected = this.#dashboardDigest;
    if (expected === undefined) return true;
    const query = url.searchParams.get('token');
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const cookie = /(?:^|;\s*)strata_dashboard=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const given = query ?? bearer ?? (cookie === undefined ? undefined : decodeURIComponent(cookie));
    if (given !== undefined && given !== '' && timingSafeEqual(tokenDigest(given), expected)) {
      if (query !== null) res.setHeader('set-cookie', `strata_dashboard=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/${this.#o.tls ? '; Secure' : ''}`);
      return true;
    }
    const body = { code: 'STRATA_ERR_AUTH', message: 'the dashboard and /status need the dashboard token (?token=, or Authorization: Bearer)' };
    const html = url.pathname === '/';
    res.writeHead(401, { 'content-type': html ? 'text/html; charset=utf-8' : 'application/json', 'www-authenticate': 'Bearer realm="strata-dashboard"' })
      .end(html ? `<!doctype html><title>401</title><body data-code="STRATA_ERR_AUTH"><h1>401: dashboard token needed</h1><p>Open this page as /?token=YOUR_DASHBOARD_TOKEN.</p></body>\n` : `${JSON.stringify(body)}\n`);
    return false;
  }

  /** Stop accepting connections (new ones are told STRATA_ERR_SHUTTING_DOWN). */
  stopAccepting(): void {
    this.#accepting = false;
    if (this.#sweeper) clearInterval(this.#sweeper);
  }

  /** Say `bye` (with `reason`) to every ready agent and close its connection normally: the federation is over. */
  farewell(reason: string, roundsCompleted: number): void {
    this.stopAccepting();
    const agents = this.#ready.size;
    for (const s of [...this.#ready]) s.bye(reason, { roundsCompleted });
    this.#log.info({ ...logEvent('coordinator.said-bye'), reason, agents }, 'said bye to the agents');
  }

  /** Close every session with STRATA_ERR_SHUTTING_DOWN, then the servers. */
  async close(): Promise<void> {
    this.stopAccepting();
    this.feed.close();
    const bye = new ProtocolError('STRATA_ERR_SHUTTING_DOWN', 'coordinator shutting down');
    for (const s of [...this.#ready, ...this.#handshaking]) s.fail(bye);
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
  }
}
