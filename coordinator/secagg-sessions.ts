import { ProtocolError, SECURE_AGGREGATION_FEATURE, type SecAggAgentMessage } from '../protocol/index.js';
import { checkSecureAggregation, type SecAggWeighting } from '../secure-aggregation/compatibility.js';
import { DEFAULT_SECAGG_RANGE, SecAggRound } from '../secure-aggregation/secagg-round.js';
import type { ClientLink } from './client-link.js';
import { roundSeed } from './client-selection.js';
import { trainingConfig } from './round-assignment.js';
import type { OpenRound, RoundEngineDeps, RoundSummary, SecAggSummary } from './round-engine-types.js';
import type { UpdateAggregator } from './strategies/strategy.js';

/** What a round's secure aggregation sessions need of the round engine. */
export interface SecAggSessionsHost {
  /** The open round: a session of any other round is over. */
  round(): OpenRound | undefined;
  link(clientId: string): ClientLink | undefined;
  /** Results of the round still to be uploaded are no longer wanted. */
  withdraw(roundId: number): void;
  /** The session unmasked the sum: the round closes. */
  close(round: OpenRound, closedBy: RoundSummary['closedBy']): void;
  /** A new session replaced a failed one: the round takes parties again, with a new deadline. */
  reopen(round: OpenRound): void;
}

/**
 * The coordinator's side of secure aggregation (SecAgg+) over a round's
 * life: each round runs a session (`SecAggRound`, which is then the
 * round's aggregator); a session that cannot finish is replaced by a new one
 * in the same round; at the round's close the session is unmasked, and the
 * round closes when it is. The round engine keeps the round's states
 * (`open`, `unmasking`) and calls in at these points.
 */
export class SecAggSessions {
  readonly #d: RoundEngineDeps;
  readonly #host: SecAggSessionsHost;
  /** How devices weight their update before masking. */
  readonly weighting: SecAggWeighting;

  /** Refuses a strategy that needs individual updates: it cannot run on sums. */
  constructor(deps: RoundEngineDeps, host: SecAggSessionsHost) {
    this.#d = deps;
    this.#host = host;
    this.weighting = checkSecureAggregation(deps.strategy, deps.options);
  }

  /** Whether a client can take part; one that does not offer secure aggregation is refused and its link closed. */
  admits(link: ClientLink): boolean {
    if (link.features.includes(SECURE_AGGREGATION_FEATURE)) return true;
    link.log.warn({ code: 'STRATA_ERR_SECAGG_UNSUPPORTED' }, 'agent without secure aggregation refused');
    link.close(new ProtocolError('STRATA_ERR_SECAGG_UNSUPPORTED', 'this coordinator runs secure aggregation; the agent does not offer it (feature secure-aggregation)'));
    return false;
  }

  /** Starts a session for `round` (its first, or after one failed: its parties start over). */
  begin(round: OpenRound): void {
    const d = this.#d;
    const o = d.options;
    const sa = o.secureAggregation!;
    const dp = trainingConfig(d, { roundId: round.id, modelVersion: d.model.version, assignedAt: 0, expiresAt: 0 }, true).dp;
    // Uniformly weighted DP updates are clipped to the DP norm on the device: a coordinate is within it, plus six standard
    // deviations of its noise share. Otherwise a weighted coordinate (samples x delta) within +-1024.
    const range = sa.range ?? (dp !== undefined && this.weighting === 'uniform'
      ? dp.clip * (1 + 6 * (dp.mode === 'local' ? dp.noiseMultiplier : dp.noiseMultiplier / Math.sqrt(dp.noiseShares ?? 1)))
      : DEFAULT_SECAGG_RANGE);
    const session: SecAggRound = new SecAggRound({
      roundId: round.id, numParams: d.model.numParams, seed: roundSeed(o.seed, round.id) ^ ((round.sessions ?? 0) * 0x9e3779b1), neighbours: sa.neighbours, range,
      log: d.log,
      send: (clientId, m) => this.#host.link(clientId)?.secagg(m),
      refuse: (clientId, err) => {
        d.metrics.updateRejected(err.code);
        d.store.recordRejection(round.id, clientId, err.code, d.clock.now());
        d.registry.rejected(clientId, d.clock.now());
        d.observer?.rejected?.({ roundId: round.id, clientId, code: err.code, at: d.clock.now() });
        this.#host.link(clientId)?.refuse(err, round.id);
      },
      unmasked: () => {
        d.metrics.secaggSession('unmasked');
        if (this.#host.round() === round && round.secagg === session) this.#host.close(round, round.closing ?? 'quorum');
      },
      failed: (err) => {
        d.metrics.secaggSession('failed');
        if (this.#host.round() === round && round.secagg === session) this.restart(round, err.code, err.message);
      },
    });
    round.secagg = session;
    round.aggregator = session as unknown as UpdateAggregator;
    round.sessions = (round.sessions ?? 0) + 1;
  }

  /**
   * A session that cannot finish (too few parties, uploads or shares) is
   * replaced: the round's parties so far are let go (a result of theirs is
   * answered as not needed, without blame), the round picks anew.
   */
  restart(round: OpenRound, code: string, reason: string): void {
    this.#d.log.warn({ code, roundId: round.id, reason, session: round.sessions }, 'secure aggregation session failed; the round starts a new one');
    this.#host.withdraw(round.id);
    round.contributors.clear();
    round.assigned.clear();
    round.closing = undefined;
    this.begin(round);
    this.#host.reopen(round);
  }

  /** The round's uploads are over: ask the survivors for their unmasking shares; the round closes as `closedBy` once unmasked. */
  unmask(round: OpenRound, session: SecAggRound, closedBy: RoundSummary['closedBy']): void {
    round.closing = closedBy;
    this.#host.withdraw(round.id);
    session.startUnmask();
  }
}

/** A secure-aggregation message from a client (keys, dealt shares, unmasking shares), for the open round's session if any. */
export function deliverSecAggMessage(session: SecAggRound | undefined, link: ClientLink, m: SecAggAgentMessage): void {
  try {
    if (session === undefined || session.roundId !== m.roundId) {
      throw new ProtocolError('STRATA_ERR_STALE_ROUND', `no secure aggregation session for round ${m.roundId}`, { roundId: m.roundId });
    }
    session.message(link.clientId, m);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    if (err.code !== 'STRATA_ERR_STALE_ROUND') link.refuse(err, m.roundId);
    else link.log.debug({ code: err.code, roundId: m.roundId }, 'secure aggregation message for a closed session; dropped');
  }
}

/** A secure-aggregation round as its summary reports it (none for a round without a session, or one whose graph never formed). */
export function secAggSummary(round: OpenRound): SecAggSummary | undefined {
  const session = round.secagg;
  const graph = session?.graph;
  if (session === undefined || graph === undefined) return undefined;
  return {
    parties: graph.parties, neighbours: graph.neighbours, threshold: graph.threshold, uploads: round.contributors.size, sessions: round.sessions ?? 1,
    quantizationBound: session.quantizationBound,
  };
}
