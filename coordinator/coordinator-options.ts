import { StrataError } from '../common/strata-error.js';
import type { SecureAggregationOptions } from '../secure-aggregation/compatibility.js';
import { compileProtocolLimits, type ProtocolLimits, type ProtocolLimitsOptions, type TrainingConfig } from '../protocol/index.js';

export type SelectionPolicy = 'random' | 'profile-aware';

/** Coordinator options; every field has a documented default. */
export interface CoordinatorOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 7070; 0 picks a free port. */
  port?: number;
  /** PEM certificate and key (contents): serve `wss://` / `https://`. Default: plain. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** agent id -> token. Default: none, and then any agent id is admitted (logged as a warning). */
  tokens?: ReadonlyMap<string, string>;
  /** K: updates a round needs. Default 10. */
  perRound?: number;
  /** Ready agents needed before a round starts. Default `perRound`. */
  minClients?: number;
  /** Select ceil(K x overCommit) agents, finish at the K-th update (FedScale's 1.3). Default 1.3. */
  overCommit?: number;
  /** Round deadline. Default 60 s. */
  roundDeadlineMs?: number;
  /** At the deadline, close the round if at least ceil(minCompletion x K) updates arrived; else extend it. Default 0.5. */
  minCompletion?: number;
  /** How a round picks its clients when the strategy has no `selectClients`. Default `random`. */
  selection?: SelectionPolicy;
  /** Stop (drain) after this many completed rounds in total. Default: run until stopped. */
  rounds?: number;
  /** Reject updates whose L2 norm exceeds this (STRATA_ERR_UPDATE_NORM). Default: no bound. */
  maxUpdateNorm?: number;
  /**
   * Training config sent in assignments. Default: model mlp, epochs 1,
   * batchSize 32, optimizer adam, learningRate 0.002, method er (experience
   * replay from the device's memory hierarchy, CarM) with replay 1 (one
   * memory sample per new sample in each batch).
   */
  training?: Partial<Omit<TrainingConfig, 'seed' | 'fedproxMu' | 'dp'>>;
  /** Per-connection wire limits (protocol/limits.ts defaults). */
  limits?: ProtocolLimitsOptions;
  /** Update frames received at once; further uploaders are paused (kept in the kernel) until a slot frees. Default 16. */
  maxConcurrentUploads?: number;
  /** Bad messages tolerated per connection before it is closed (STRATA_ERR_TOO_MANY_ERRORS). Default 20. */
  maxErrorsPerConnection?: number;
  /** Seeds selection and the per-round training seed. Default 1. */
  seed?: number;
  /**
   * Read-only token of the live dashboard (`/`, `/events`) and `/status`,
   * which show client ids: given as `?token=`, `Authorization: Bearer` or the
   * page's cookie. Default: none, and then they are open (logged as a warning).
   */
  dashboardToken?: string;
  /** How long SIGTERM waits for the open round before checkpointing it. Default 5 s. */
  drainTimeoutMs?: number;
  /**
   * Secure aggregation (SecAgg+): the coordinator only ever holds the sum of
   * a round's updates. `true` for the defaults. Refused (STRATA_ERR_SECAGG_INCOMPATIBLE)
   * with strategies that need individual updates. Default off.
   */
  secureAggregation?: boolean | SecureAggregationOptions;
}

export interface CompiledCoordinatorOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: { cert: string | Buffer; key: string | Buffer } | undefined;
  readonly tokens: ReadonlyMap<string, string> | undefined;
  readonly perRound: number;
  readonly minClients: number;
  readonly overCommit: number;
  readonly roundDeadlineMs: number;
  readonly minCompletion: number;
  readonly selection: SelectionPolicy;
  readonly rounds: number;
  readonly maxUpdateNorm: number;
  readonly training: Required<Omit<TrainingConfig, 'seed' | 'fedproxMu' | 'dp'>>;
  readonly limits: ProtocolLimits;
  readonly maxConcurrentUploads: number;
  readonly maxErrorsPerConnection: number;
  readonly seed: number;
  readonly dashboardToken: string | undefined;
  readonly drainTimeoutMs: number;
  readonly secureAggregation: { readonly neighbours: number | undefined; readonly range: number | undefined } | undefined;
}

function bad(option: string, expected: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `coordinator: ${option} must be ${expected} (got ${String(value)})`, { option, value });
}

function int(option: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw bad(option, `an integer >= ${min}`, value);
  return value;
}

function num(option: string, value: number, min: number, max = Number.POSITIVE_INFINITY, exclusiveMin = false): number {
  if (!Number.isFinite(value) && value !== Number.POSITIVE_INFINITY) throw bad(option, 'a number', value);
  if (value < min || (exclusiveMin && value === min) || value > max) throw bad(option, `in ${exclusiveMin ? '(' : '['}${min}, ${max}]`, value);
  return value;
}

function optimizerOf(o: string | undefined): 'adam' | 'sgd' {
  if (o === undefined || o === 'adam' || o === 'sgd') return o ?? 'adam';
  throw bad('training.optimizer', 'adam or sgd', o);
}

function dashboardTokenOf(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || token.length < 8 || token.length > 1024 || /\s/.test(token)) {
    throw bad('dashboardToken', 'a string of 8 to 1024 characters without spaces', token === undefined ? token : '(hidden)');
  }
  return token;
}

export function compileCoordinatorOptions(o: CoordinatorOptions = {}): CompiledCoordinatorOptions {
  const perRound = int('perRound', o.perRound ?? 10, 1);
  const selection = o.selection ?? 'random';
  if (selection !== 'random' && selection !== 'profile-aware') throw bad('selection', 'random or profile-aware', selection);
  const t = o.training ?? {};
  return Object.freeze({
    host: o.host ?? '127.0.0.1',
    port: int('port', o.port ?? 7070, 0),
    tls: o.tls,
    tokens: o.tokens,
    perRound,
    minClients: int('minClients', o.minClients ?? perRound, 1),
    overCommit: num('overCommit', o.overCommit ?? 1.3, 1, 10),
    roundDeadlineMs: int('roundDeadlineMs', o.roundDeadlineMs ?? 60_000, 1),
    minCompletion: num('minCompletion', o.minCompletion ?? 0.5, 0, 1, true),
    selection,
    rounds: o.rounds === undefined ? Number.POSITIVE_INFINITY : int('rounds', o.rounds, 1),
    maxUpdateNorm: o.maxUpdateNorm === undefined ? Number.POSITIVE_INFINITY : num('maxUpdateNorm', o.maxUpdateNorm, 0, Number.POSITIVE_INFINITY, true),
    training: Object.freeze({
      model: t.model ?? 'mlp',
      epochs: int('training.epochs', t.epochs ?? 1, 1),
      batchSize: int('training.batchSize', t.batchSize ?? 32, 1),
      learningRate: num('training.learningRate', t.learningRate ?? 0.002, 0, 10, true),
      optimizer: optimizerOf(t.optimizer),
      method: t.method ?? 'er',
      replay: num('training.replay', t.replay ?? 1, 0, 100),
    }),
    limits: compileProtocolLimits(o.limits),
    maxConcurrentUploads: int('maxConcurrentUploads', o.maxConcurrentUploads ?? 16, 1),
    maxErrorsPerConnection: int('maxErrorsPerConnection', o.maxErrorsPerConnection ?? 20, 1),
    seed: int('seed', o.seed ?? 1, 0),
    dashboardToken: dashboardTokenOf(o.dashboardToken),
    drainTimeoutMs: int('drainTimeoutMs', o.drainTimeoutMs ?? 5000, 0),
    secureAggregation: secureAggregationOf(o.secureAggregation),
  });
}

function secureAggregationOf(o: boolean | SecureAggregationOptions | undefined): CompiledCoordinatorOptions['secureAggregation'] {
  if (o === undefined || o === false) return undefined;
  const s = o === true ? {} : o;
  const neighbours = s.neighbours === undefined ? undefined : int('secureAggregation.neighbours', s.neighbours, 2);
  if (neighbours !== undefined && neighbours % 2 !== 0) throw bad('secureAggregation.neighbours', 'even (each party links to k/2 on either side)', neighbours);
  const range = s.range === undefined ? undefined : num('secureAggregation.range', s.range, 0, Number.MAX_SAFE_INTEGER, true);
  return Object.freeze({ neighbours, range });
}
