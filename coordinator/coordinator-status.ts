import type { ClientActivityRow } from './client-activity.js';
import type { CompiledCoordinatorOptions } from './coordinator-options.js';
import type { CoordinatorMetrics } from './coordinator-metrics.js';
import type { GlobalModel } from './global-model.js';
import type { RoundEngine } from './round-engine.js';
import type { FederatedStrategy, PrivacySpent } from './strategies/strategy.js';
import { newSpaceBytes } from './young-generation.js';

/** `GET /status`. */
export interface CoordinatorStatus {
  state: string;
  engine: string;
  roundId: number | null;
  modelVersion: number;
  roundsCompleted: number;
  targetRounds: number | null;
  perRound: number;
  strategy: string;
  /** The strategy's settings (its `settings()`). */
  strategySettings: Record<string, unknown>;
  assigned: number;
  acceptedThisRound: number;
  roundDeadlineAt: number | null;
  connectedClients: number;
  knownClients: number;
  lastAccuracy: number | null;
  lastLoss: number | null;
  numParams: number;
  layoutHash: string;
  updatesAccepted: number;
  updatesRejected: Record<string, number>;
  /** Agents assigned in open rounds in place of ones that dropped out. */
  replacements: number;
  aggregationMBps: number;
  rssBytes: number;
  /** Peak resident set size of this process so far (getrusage maxrss). */
  peakRssBytes: number;
  /** V8 heap and off-heap (Buffer / ArrayBuffer) bytes now, to tell where resident memory goes. */
  heapUsedBytes: number;
  /** V8 heap reserved (committed), used or not: part of the resident set. */
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** V8's young generation (new space) now; the CLI daemon pins it (young-generation.ts). */
  newSpaceBytes: number;
  uptimeSeconds: number;
  /** Every known client: rounds, outcomes, device seconds, joules, and the memory configuration (Miro's choice) it reports. */
  clients: ClientActivityRow[];
  /** Secure aggregation (on or off) and the DP spent so far: epsilon of the last round and in total, at delta (null without DP). */
  privacy: { secureAggregation: boolean; dp: PrivacySpent | null };
}

export function statusOf(
  state: string, startedAt: number, o: CompiledCoordinatorOptions, strategy: FederatedStrategy, m: CoordinatorMetrics, engine: RoundEngine | undefined, model: GlobalModel | undefined,
): Omit<CoordinatorStatus, 'clients'> {
  const snap = engine?.snapshot();
  const dp = strategy.privacySpent?.() ?? null;
  const evaluation = engine?.lastEvaluation ?? null;
  return {
    state,
    engine: snap?.state ?? 'idle',
    roundId: snap?.roundId ?? null,
    modelVersion: model?.version ?? 0,
    roundsCompleted: model?.version ?? 0,
    targetRounds: Number.isFinite(o.rounds) ? o.rounds : null,
    perRound: o.perRound,
    strategy: strategy.name,
    strategySettings: strategy.settings?.() ?? {},
    assigned: snap?.assigned ?? 0,
    acceptedThisRound: snap?.accepted ?? 0,
    roundDeadlineAt: snap?.deadlineAt ?? null,
    connectedClients: engine?.connectedClients ?? 0,
    knownClients: engine?.knownClients ?? 0,
    lastAccuracy: evaluation?.accuracy ?? null,
    lastLoss: evaluation?.loss ?? null,
    numParams: model?.numParams ?? 0,
    layoutHash: model?.layoutHash ?? '',
    updatesAccepted: m.updatesAccepted,
    replacements: m.replacements,
    updatesRejected: m.updatesRejected,
    aggregationMBps: m.aggregationMBps,
    ...memoryNow(),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    uptimeSeconds: (Date.now() - startedAt) / 1000,
    privacy: { secureAggregation: o.secureAggregation !== undefined, dp },
  };
}

function memoryNow(): Pick<CoordinatorStatus, 'rssBytes' | 'heapUsedBytes' | 'heapTotalBytes' | 'externalBytes' | 'arrayBuffersBytes' | 'newSpaceBytes'> {
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers,
    newSpaceBytes: newSpaceBytes(),
  };
}
