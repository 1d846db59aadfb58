import type { Logger } from 'pino';
import { systemClock, type Clock } from '../common/clock.js';
import { StrataError } from '../common/strata-error.js';
import { ProtocolError, computeLayoutHash, type PrivacySettings, type WeightsLayout } from '../protocol/index.js';
import type { CoordinatorStore } from '../storage-tier/coordinator-store.js';
import { ClientActivity, type ClientActivityRow, type ClientBoundary } from './client-activity.js';
import { ClientRegistry } from './client-registry.js';
import { CoordinatorMetrics } from './coordinator-metrics.js';
import { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions } from './coordinator-options.js';
import { statusOf, type CoordinatorStatus } from './coordinator-status.js';
import { GlobalModel } from './global-model.js';
import { RoundEngine } from './round-engine.js';
import type { RoundEngineObserver, RoundSummary } from './round-engine-types.js';
import { CoordinatorServer } from './server/coordinator-server.js';
import type { FederatedStrategy } from './strategies/strategy.js';
import { logEvent } from '../common/log-events.js';

export { SERVER_VERSION } from './server/coordinator-server.js';

export type CoordinatorState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

/** The global model as the coordinator needs it: its flat layout and initial weights (`ModelHost` is one). */
export interface CoordinatorModel {
  layout: WeightsLayout;
  /** Used only for a new database. */
  initialWeights(): Float32Array;
}

export interface CoordinatorDeps {
  /** How rounds are configured, aggregated, stepped and (optionally) evaluated: FedAvg, a wrapper, your own. */
  strategy: FederatedStrategy;
  model: CoordinatorModel;
  /** The coordinator's database (model versions, the update log, clients): a restart resumes from it. */
  store: CoordinatorStore;
  logger: Logger;
  onRoundCompleted?: (summary: RoundSummary) => void;
  /** Default: the system clock. */
  clock?: Clock;
}

/**
 * The coordinator daemon: the round engine over a persisted store, driven by
 * the agents' WebSocket sessions (coordinator/server/). `finished` resolves
 * when the configured number of rounds is done; `stop()` drains.
 */
export class Coordinator {
  readonly options: CompiledCoordinatorOptions;
  readonly metrics = new CoordinatorMetrics();
  readonly #activity = new ClientActivity();
  readonly #deps: CoordinatorDeps;
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  readonly #server: CoordinatorServer;
  #state: CoordinatorState = 'created';
  #engine: RoundEngine | undefined;
  #registry: ClientRegistry | undefined;
  #model: GlobalModel | undefined;
  #stopping: Promise<void> | undefined;
  readonly finished: Promise<void>;
  #resolveFinished!: () => void;

  constructor(options: CoordinatorOptions, deps: CoordinatorDeps) {
    this.options = compileCoordinatorOptions(options);
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'coordinator' });
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    const o = this.options;
    this.#server = new CoordinatorServer({
      host: o.host, port: o.port, tls: o.tls, tokens: o.tokens, limits: o.limits, maxErrorsPerConnection: o.maxErrorsPerConnection,
      maxConcurrentUploads: o.maxConcurrentUploads, dashboardToken: o.dashboardToken, privacy: privacySettingsOf(o, deps.strategy),
    }, {
      onReady: (s) => {
        this.#engine!.connect(s);
        this.#server.feed.changed();
      },
      onMessage: (s, m) => {
        if (m.type === 'result') this.#engine!.result(s, m);
        else if (m.type === 'secagg-keys' || m.type === 'secagg-shares' || m.type === 'secagg-unmask-shares') this.#engine!.secaggMessage(s, m);
        else s.refuse(new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', `a coordinator does not accept "${m.type}" messages`));
      },
      onBinary: (s, data) => this.#engine!.update(s, data),
      onClosed: (s) => {
        this.#engine!.disconnect(s);
        this.#server.feed.changed();
      },
      health: () => ({ ok: this.#state === 'running', state: this.#state }),
      status: () => this.status(),
      history: () => this.#deps.store.history(),
      metricsText: () => this.metrics.render(),
    }, this.metrics, this.#log);
    this.metrics.setGauges(() => ({
      connected_clients: this.#engine?.connectedClients ?? 0,
      known_clients: this.#engine?.knownClients ?? 0,
      model_version: this.#model?.version ?? 0,
      round_id: this.#engine?.roundId ?? 0,
      last_accuracy: this.#engine?.lastEvaluation?.accuracy ?? Number.NaN,
      peak_resident_memory_bytes: process.resourceUsage().maxRSS * 1024,
    }));
    this.metrics.setPrivacy(() => deps.strategy.privacySpent?.() ?? null);
  }

  get state(): CoordinatorState { return this.#state; }
  get port(): number { return this.#server.port; }
  get url(): string { return this.#server.url; }
  get httpUrl(): string { return this.#server.httpUrl; }
  get model(): GlobalModel | undefined { return this.#model; }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new StrataError('STRATA_ERR_STATE', `coordinator cannot start in state ${this.#state}`);
    this.#state = 'starting';
    const { store, strategy } = this.#deps;
    const layout = this.#deps.model.layout;
    const clock = this.#deps.clock ?? systemClock;
    const layoutHash = computeLayoutHash(layout);
    let latest = store.latestModel();
    if (latest === undefined) {
      store.saveInitialModel(initialWeightsOf(this.#deps.model, layout), layoutHash, clock.now());
      latest = store.latestModel()!;
    }
    if (latest.layoutHash !== layoutHash) {
      throw new StrataError('STRATA_ERR_LAYOUT_MISMATCH', `${store.file}: the database holds a model of layout ${latest.layoutHash}, this run's model is ${layoutHash}`, {
        file: store.file, stored: latest.layoutHash, expected: layoutHash,
      });
    }
    strategy.importState(latest.strategyState);
    this.#model = new GlobalModel(latest.weights, latest.version, layoutHash);
    const feed = this.#server.feed;
    const observer: RoundEngineObserver = {
      roundCompleted: (summary) => {
        feed.round(summary);
        this.#deps.onRoundCompleted?.(summary);
      },
      roundOpened: () => feed.changed(),
      assigned: () => feed.changed(),
      accepted: (e) => {
        this.#activity.accepted(e);
        feed.changed();
      },
      rejected: (e) => {
        this.#activity.rejected(e.clientId, e.code);
        feed.changed();
      },
      dropped: () => feed.changed(),
      finished: () => this.#resolveFinished(),
    };
    this.#registry = new ClientRegistry(store);
    this.#engine = new RoundEngine({
      options: this.options, store, registry: this.#registry, strategy, metrics: this.metrics, model: this.#model,
      log: this.#log.child({ component: 'round-engine' }), clock, observer,
    });
    if (!this.#server.authenticates) this.#log.warn('no tokens configured: any agent id is admitted');
    if (!this.#server.dashboardProtected) this.#log.warn('no dashboard token configured: the dashboard and /status (client ids) are open to anyone who reaches the port');
    await this.#server.listen();
    this.#state = 'running';
    this.#log.info({ ...logEvent('coordinator.listening'), url: this.url, modelVersion: latest.version, strategy: strategy.name, params: this.#model.numParams }, 'coordinator listening');
    this.#engine.start(latest.accuracy === null ? null : { accuracy: latest.accuracy, loss: latest.loss ?? Number.NaN });
  }

  status(): CoordinatorStatus {
    return { ...statusOf(this.#state, this.#startedAt, this.options, this.#deps.strategy, this.metrics, this.#engine, this.#model), clients: this.clients() };
  }

  /** Every client the coordinator knows: its rounds, outcomes, device seconds, joules and the memory configuration it reports. */
  clients(): ClientActivityRow[] {
    const engine = this.#engine;
    return this.#registry === undefined ? [] : this.#activity.rows(this.#registry, (id) => engine?.isWorking(id) ?? false);
  }

  /** Miro's choice at every task boundary a client profiled. */
  get boundaries(): readonly ClientBoundary[] {
    return this.#activity.boundaries;
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
    this.#server.stopAccepting();
    if (wasRunning && this.#engine) await this.#engine.drain(drainTimeoutMs);
    if (this.#engine?.complete === true) {
      // The federation is over (not a restart): agents are told so, and need not reconnect.
      const rounds = this.#model?.version ?? 0;
      this.#server.farewell(`federation complete: ${rounds} rounds`, rounds);
    }
    await this.#server.close();
    this.#state = 'stopped';
    this.#resolveFinished();
    this.#log.info(logEvent('coordinator.stopped'), 'stopped');
  }
}

/** What agents are told of the coordinator's privacy (their floor is checked against it). */
export function privacySettingsOf(o: CompiledCoordinatorOptions, strategy: FederatedStrategy): PrivacySettings | undefined {
  const dp = strategy.privacySpent?.();
  if (o.secureAggregation === undefined && dp === undefined) return undefined;
  return {
    secureAggregation: o.secureAggregation !== undefined,
    dp: dp?.mode ?? 'off',
    ...(dp !== undefined ? { noiseMultiplier: dp.noiseMultiplier, clip: dp.clip } : {}),
  };
}

function initialWeightsOf(model: CoordinatorModel, layout: WeightsLayout): Float32Array {
  const w = model.initialWeights();
  const size = layout.reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
  if (w.length === 0 || w.length !== size) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `model: initialWeights() returned ${w.length} values, its layout holds ${size}`, { option: 'model' });
  }
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!)) throw new StrataError('STRATA_ERR_NON_FINITE', `model: initial weight ${i} is not finite`, { option: 'model', index: i });
  }
  return w;
}
