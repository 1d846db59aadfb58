import { encodeWeightFrame } from '../protocol/index.js';
import type { SecAggWeighting } from '../secure-aggregation/compatibility.js';
import type { ClientLink } from './client-link.js';
import { selectForRound } from './client-selection.js';
import type { ClientWork } from './client-work.js';
import { roundAssignment } from './round-assignment.js';
import type { Assignment, OpenRound, RoundEngineDeps } from './round-engine-types.js';
import { logEvent } from '../common/log-events.js';

/**
 * Assigns clients to the open round: how many it still needs (K
 * over-committed in a synchronous round, every free client in FedBuff),
 * which of the idle ones (the selection policy, each draw seeded by the
 * round and its count), and sends each its assignment and the model. Idle
 * clients that take over from dropouts are counted as replacements.
 */
export class ClientAssigner {
  readonly #d: RoundEngineDeps;
  readonly #links: ReadonlyMap<string, ClientLink>;
  readonly #work: ClientWork;
  readonly #weighting: SecAggWeighting | undefined;

  /** `links`, `work`: the round engine's linked clients and their work; `weighting`: secure aggregation is on. */
  constructor(deps: RoundEngineDeps, links: ReadonlyMap<string, ClientLink>, work: ClientWork, weighting: SecAggWeighting | undefined) {
    this.#d = deps;
    this.#links = links;
    this.#work = work;
    this.#weighting = weighting;
  }

  /**
   * Linked clients free to train: no unanswered assignment, no upload on its
   * way, and not already in `round` (one update per client per round, or per
   * FedBuff buffer; a client refused in a round is not picked again in it).
   */
  idle(round: OpenRound | undefined): ClientLink[] {
    const out: ClientLink[] = [];
    for (const link of this.#links.values()) {
      const id = link.clientId;
      if (this.#work.busy(id)) continue;
      if (round !== undefined && (round.contributors.has(id) || round.assigned.has(id))) continue;
      out.push(link);
    }
    return out;
  }

  /** Assigns idle clients to `round` up to what it needs. */
  topUp(round: OpenRound): void {
    const { options: o, strategy } = this.#d;
    const sync = strategy.mode === 'sync';
    const desired = sync ? Math.ceil(o.perRound * o.overCommit) : Number.POSITIVE_INFINITY;
    const need = desired - round.contributors.size - this.#work.outstanding(round.id, this.#d.clock.now());
    if (need <= 0) return;
    const idle = this.idle(round);
    if (idle.length === 0) return;
    const picked = selectForRound(idle, this.#d.registry, need, o.selection, strategy, {
      seed: o.seed, roundId: round.id, modelVersion: this.#d.model.version, selection: round.selections++,
    });
    for (const link of picked) this.#assign(link, round);
    if (picked.length > 0) this.#d.store.bumpRound(round.id, 'selected', picked.length);
    const replacements = Math.min(round.unreplaced, picked.length);
    if (replacements > 0) {
      // Taking over from clients that dropped out: the round goes on without waiting for its deadline.
      round.unreplaced -= replacements;
      const clientIds = picked.slice(0, replacements).map((l) => l.clientId);
      this.#d.metrics.replacementAssigned(replacements);
      this.#d.log.info({ ...logEvent('coordinator.replacement-assigned'), roundId: round.id, replacements: clientIds }, 'replacement assigned');
      this.#d.observer?.replaced?.({ roundId: round.id, clientIds, at: this.#d.clock.now() });
    }
  }

  #assign(link: ClientLink, round: OpenRound): void {
    const now = this.#d.clock.now();
    const a: Assignment = { roundId: round.id, modelVersion: this.#d.model.version, assignedAt: now, expiresAt: now + this.#d.options.roundDeadlineMs };
    this.#work.assign(link.clientId, a);
    round.assigned.add(link.clientId);
    round.secagg?.join(link.clientId);
    this.send(link, a, round);
    this.#d.observer?.assigned?.({ roundId: round.id, clientId: link.clientId, profile: link.profile, modelVersion: a.modelVersion, at: now });
  }

  /** Sends `a` and the model to `link`, with the open round's deadline (also to a client that reconnected mid-round). */
  send(link: ClientLink, a: Assignment, round: OpenRound | undefined): void {
    const now = this.#d.clock.now();
    const deadlineAt = Math.round(round?.deadlineAt ?? now + this.#d.options.roundDeadlineMs);
    link.assign(roundAssignment(this.#d, a, deadlineAt, now, this.#weighting), this.#d.model.frame(a.roundId, encodeWeightFrame));
  }
}
