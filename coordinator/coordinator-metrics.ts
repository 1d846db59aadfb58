import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PrivacySpent } from './strategies/strategy.js';

/** Gauges read at scrape time (the coordinator's view now). */
export interface CoordinatorGauges {
  connected_clients: number;
  known_clients: number;
  model_version: number;
  round_id: number;
  last_accuracy: number;
  peak_resident_memory_bytes: number;
}

/** What one accepted update cost, for the histograms. */
export interface UpdateTimings {
  /** Update payload bytes. */
  bytes: number;
  /** Validation + accumulation seconds. */
  aggregationSeconds: number;
  /** Seconds writing its frame to the round's spool (its rows' group commit is counted by `updatesCommitted`). */
  persistSeconds: number;
  /** Seconds from its assignment to its arrival. */
  assignmentSeconds: number;
}

const SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
const PERSIST_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const BYTES_BUCKETS = [1e3, 1e4, 1e5, 4e5, 1e6, 4e6, 1.6e7, 6.4e7];

/** The process metrics (CPU, memory, heap spaces, GC, event-loop lag): one registry per process, whatever the coordinators in it. */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * A coordinator's metrics for `GET /metrics` (prom-client, text format
 * 0.0.4): counters, histograms of round duration, update size,
 * assignment-to-update time and persistence time, gauges read at scrape
 * time, and the default process metrics. Memory is bounded whatever the
 * uptime: histograms keep fixed buckets, labels are error codes (a closed
 * list). The plain-number fields mirror the counters for `/status`.
 */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  #roundsCompleted = 0;
  #updatesAccepted = 0;
  #replacements = 0;
  readonly #updatesRejected = new Map<string, number>();
  #aggregationBytes = 0;
  #aggregationSeconds = 0;
  #gauges: (() => CoordinatorGauges) | undefined;
  #privacy: (() => PrivacySpent | null) | undefined;
  readonly #c: {
    rounds: Counter; accepted: Counter; rejected: Counter<'code'>; protocolErrors: Counter<'code'>; dropped: Counter; replacements: Counter;
    connections: Counter; aggregationBytes: Counter; aggregationSeconds: Counter; persistSeconds: Counter; secaggSessions: Counter<'outcome'>;
  };
  readonly #h: { round: Histogram; bytes: Histogram; assignment: Histogram; persist: Histogram };

  constructor() {
    const registers = [this.registry];
    const counter = <L extends string = string>(name: string, help: string, labelNames: L[] = []): Counter<L> => new Counter({ name, help, labelNames, registers });
    this.#c = {
      rounds: counter('strata_rounds_completed_total', 'Rounds aggregated into a new model version.'),
      accepted: counter('strata_updates_accepted_total', 'Updates accepted into an aggregate.'),
      rejected: counter('strata_updates_rejected_total', 'Updates rejected, by error code.', ['code']),
      protocolErrors: counter('strata_protocol_errors_total', 'Coded protocol errors answered, by code.', ['code']),
      dropped: counter('strata_assignments_dropped_total', 'Assignments whose agent disconnected.'),
      replacements: counter('strata_replacements_total', 'Agents assigned in an open round in place of one that dropped out.'),
      connections: counter('strata_connections_total', 'WebSocket connections accepted.'),
      aggregationBytes: counter('strata_aggregation_bytes_total', 'Update payload bytes validated and aggregated.'),
      aggregationSeconds: counter('strata_aggregation_seconds_total', 'Time spent validating and aggregating updates.'),
      persistSeconds: counter('strata_persist_seconds_total', 'Time spent persisting accepted updates.'),
      secaggSessions: counter('strata_secagg_sessions_total', 'Secure aggregation sessions, by outcome (unmasked: the round closed on their sum; failed: run again).', ['outcome']),
    };
    this.#h = {
      round: new Histogram({ name: 'strata_round_duration_seconds', help: 'Time from a round opening to its close.', buckets: SECONDS_BUCKETS, registers }),
      bytes: new Histogram({ name: 'strata_update_bytes', help: 'Payload bytes of accepted updates.', buckets: BYTES_BUCKETS, registers }),
      assignment: new Histogram({ name: 'strata_assignment_to_update_seconds', help: 'Time from an assignment to its accepted update.', buckets: SECONDS_BUCKETS, registers }),
      persist: new Histogram({
        name: 'strata_update_persist_seconds', help: 'Time making one accepted update durable: its spool write, the wait for its group commit, the commit.', buckets: PERSIST_BUCKETS,
        registers,
      }),
    };
    const gauge = (name: keyof CoordinatorGauges, help: string): void => {
      const read = (): number | undefined => this.#gauges?.()[name];
      new Gauge({
        name: `strata_${name}`, help, registers,
        collect() {
          const v = read();
          this.set(v === undefined || !Number.isFinite(v) ? 0 : v);
        },
      });
    };
    gauge('connected_clients', 'Agents connected now.');
    gauge('known_clients', 'Agents the coordinator has ever seen.');
    gauge('model_version', 'Version of the global model.');
    gauge('round_id', 'Open round id (0: none).');
    gauge('last_accuracy', 'Accuracy of the latest evaluated model (0 before any).');
    gauge('peak_resident_memory_bytes', 'Peak resident set size of the process.');
    const dp = (name: string, help: string, pick: (p: PrivacySpent) => number): void => {
      const read = (): PrivacySpent | null | undefined => this.#privacy?.();
      new Gauge({
        name, help, registers,
        collect() {
          const p = read();
          this.set(p === null || p === undefined ? 0 : pick(p));
        },
      });
    };
    dp('strata_dp_epsilon', 'Differential privacy: epsilon spent over all rounds so far at strata_dp_delta (RDP accountant, subsampled Gaussian; 0 without DP).', (p) => p.epsilon);
    dp('strata_dp_epsilon_last_round', 'Differential privacy: epsilon of the last round alone.', (p) => p.epsilonRound);
    dp('strata_dp_delta', 'Differential privacy: the delta epsilon is reported at.', (p) => p.delta);
    dp('strata_dp_rounds', 'Differential privacy: rounds accounted.', (p) => p.rounds);
  }

  /** Where the DP accounting is read at scrape time (null: no DP). */
  setPrivacy(read: () => PrivacySpent | null): void {
    this.#privacy = read;
  }

  secaggSession(outcome: 'unmasked' | 'failed'): void {
    this.#c.secaggSessions.inc({ outcome });
  }

  /** Where the gauges are read at scrape time. */
  setGauges(read: () => CoordinatorGauges): void {
    this.#gauges = read;
  }

  roundCompleted(seconds: number): void {
    this.#roundsCompleted++;
    this.#c.rounds.inc();
    this.#h.round.observe(seconds);
  }

  updateAccepted(t: UpdateTimings): void {
    this.#updatesAccepted++;
    this.#aggregationBytes += t.bytes;
    this.#aggregationSeconds += t.aggregationSeconds;
    this.#c.accepted.inc();
    this.#c.aggregationBytes.inc(t.bytes);
    this.#c.aggregationSeconds.inc(t.aggregationSeconds);
    this.#c.persistSeconds.inc(t.persistSeconds);
    this.#h.bytes.observe(t.bytes);
    this.#h.assignment.observe(Math.max(0, t.assignmentSeconds));
  }

  /** An accepted update is durable, `seconds` after its spool write began. */
  updateDurable(seconds: number): void {
    this.#h.persist.observe(seconds);
  }

  /** A group commit of accepted updates' rows took `seconds`. */
  updatesCommitted(seconds: number): void {
    this.#c.persistSeconds.inc(seconds);
  }

  updateRejected(code: string): void {
    this.#updatesRejected.set(code, (this.#updatesRejected.get(code) ?? 0) + 1);
    this.#c.rejected.inc({ code });
  }

  protocolError(code: string): void {
    this.#c.protocolErrors.inc({ code });
  }

  assignmentDropped(): void {
    this.#c.dropped.inc();
  }

  replacementAssigned(count = 1): void {
    this.#replacements += count;
    this.#c.replacements.inc(count);
  }

  connectionAccepted(): void {
    this.#c.connections.inc();
  }

  get roundsCompleted(): number { return this.#roundsCompleted; }
  get updatesAccepted(): number { return this.#updatesAccepted; }
  get replacements(): number { return this.#replacements; }
  get updatesRejected(): Record<string, number> { return Object.fromEntries(this.#updatesRejected); }

  /** Aggregation throughput in MB/s (10^6 bytes) of update payload, or 0 before any update. */
  get aggregationMBps(): number {
    return this.#aggregationSeconds > 0 ? this.#aggregationBytes / 1e6 / this.#aggregationSeconds : 0;
  }

  /** The exposition text: this coordinator's metrics, then the process's. */
  async render(): Promise<string> {
    const own = await this.registry.metrics();
    const proc = await processMetrics().metrics();
    return `${own}\n${proc}`;
  }

  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;
}
