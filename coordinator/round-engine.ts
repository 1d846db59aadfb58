import { ProtocolError, peekWeightFrameRoundId, type ResultMessage, type SecAggAgentMessage } from '../protocol/index.js';
import type { ClientLink } from './client-link.js';
import { ClientAssigner } from './client-assigner.js';
import { ClientWork } from './client-work.js';
import type { CompiledCoordinatorOptions } from './coordinator-options.js';
import type { UpdateAggregator } from './strategies/strategy.js';
import { takeMaskedUpdate } from './masked-intake.js';
import { applyRound } from './apply-round.js';
import { GroupCommit } from './group-commit.js';
import { RoundEvaluations } from './round-evaluations.js';
import { replayRound } from './round-replay.js';
import { SecAggSessions, deliverSecAggMessage } from './secagg-sessions.js';
import { strayFrameError, strayResultError } from './stray-messages.js';
import { takeUpdate, type TakenUpdate } from './update-intake.js';
import type { Assignment, EngineState, Evaluation, OpenRound, RoundEngineDeps, RoundSummary } from './round-engine-types.js';
import { logEvent } from '../common/log-events.js';

/**
 * Runs rounds, over any transport and on any clock: selects K
 * (over-committed) idle clients, sends them the assignment and the model,
 * validates and persists each update before acking it, folds it into the
 * strategy's aggregator, and closes the round at the K-th update, or at the
 * deadline with at least the minimum completion (else the deadline is
 * extended and the round topped up), so stragglers and dropouts never stall
 * it. A straggler stays busy until its late result comes (answered as not
 * needed, without blame) or it disconnects. In `async` mode (FedBuff) every
 * free client not already in the buffer trains, and a round is the buffer
 * of K updates.
 *
 * The daemon drives it from WebSocket sessions on the system clock; a
 * simulation from virtual clients on a virtual clock: the same rounds.
 */
export class RoundEngine {
  readonly #d: RoundEngineDeps;
  readonly #o: CompiledCoordinatorOptions;
  readonly #links = new Map<string, ClientLink>();
  readonly #work = new ClientWork();
  #state: EngineState = 'idle';
  #round: OpenRound | undefined;
  #nextRoundId = 1;
  #scratch: Float32Array;
  /** Evaluations run one after another, beside the next round. */
  readonly #evaluations: RoundEvaluations;
  #draining = false;
  #drainWaiter: (() => void) | undefined;
  /** The configured number of rounds has been closed (their evaluations may still run). */
  #lastClosed = false;
  /** Secure aggregation is on: the rounds' sessions. */
  readonly #secagg: SecAggSessions | undefined;
  readonly #assigner: ClientAssigner;
  readonly #commits: GroupCommit;

  constructor(deps: RoundEngineDeps) {
    this.#d = deps;
    this.#o = deps.options;
    this.#scratch = new Float32Array(deps.model.numParams);
    this.#commits = new GroupCommit(deps, (err) => this.#fatal(err, 'committing accepted updates failed; stopping'));
    this.#evaluations = new RoundEvaluations(deps, () => this.#finish());
    // Refused here, before any round: strategies that need individual updates cannot run on sums.
    this.#secagg = deps.options.secureAggregation === undefined ? undefined : new SecAggSessions(deps, {
      round: () => this.#round,
      link: (clientId) => this.#links.get(clientId),
      withdraw: (roundId) => this.#withdraw(roundId),
      close: (round, closedBy) => this.#close(round, closedBy),
      reopen: (round) => {
        this.#state = this.#draining ? 'draining' : 'open';
        this.#armDeadline(round);
        this.#progress();
      },
    });
    this.#assigner = new ClientAssigner(deps, this.#links, this.#work, this.#secagg?.weighting);
  }

  get state(): EngineState { return this.#state; }
  get lastEvaluation(): Evaluation | null { return this.#evaluations.last; }
  get connectedClients(): number { return this.#links.size; }
  get knownClients(): number { return this.#d.registry.size; }
  /** The open round's id, or null. */
  get roundId(): number | null { return this.#round?.id ?? null; }
  /** Whether the engine will run no more rounds: the last one is closed (its evaluation may still run), or it stopped. */
  get done(): boolean { return this.#lastClosed || this.#state === 'finished' || this.#state === 'stopped'; }
  /** Whether the configured number of rounds is done (the federation is complete, not merely stopped). */
  get complete(): boolean { return this.#lastClosed || this.#state === 'finished'; }

  snapshot(): { state: EngineState; roundId: number | null; modelVersion: number; accepted: number; assigned: number; deadlineAt: number | null } {
    const round = this.#round;
    return {
      state: this.#state, roundId: round?.id ?? null, modelVersion: this.#d.model.version,
      accepted: round?.contributors.size ?? 0, assigned: round === undefined ? 0 : this.#outstanding(round), deadlineAt: round?.deadlineAt ?? null,
    };
  }

  /** Whether a client holds an unanswered assignment or has an update on its way. */
  isWorking(clientId: string): boolean {
    return this.#work.busy(clientId);
  }

  /** Resume the round that was open when the process stopped (replaying its persisted updates), or wait for clients. */
  start(lastEval: Evaluation | null): void {
    this.#evaluations.last = lastEval;
    const rounds = this.#d.store.rounds();
    this.#nextRoundId = (rounds.at(-1)?.roundId ?? 0) + 1;
    if (this.#d.model.version >= this.#o.rounds) return this.#finish();
    const spent = this.#d.strategy.budgetSpent?.({ population: Math.max(this.#d.registry.size, this.#o.perRound), perRound: this.#o.perRound }) ?? null;
    if (spent !== null) {
      this.#d.log.warn({ modelVersion: this.#d.model.version, privacy: this.#d.strategy.privacySpent?.() }, `privacy budget spent: ${spent}; training stops`);
      return this.#finish();
    }
    const open = this.#d.store.openRoundRow();
    if (open === undefined) {
      this.#state = 'waiting';
    } else {
      // A secure-aggregation session cannot outlive its process (its parties' keys are gone): the round starts a new one.
      const replay = this.#secagg === undefined ? replayRound(this.#d, open.roundId) : undefined;
      this.#d.store.bumpRound(open.roundId, 'resumed');
      this.#round = this.#newRound(open.roundId, replay?.aggregator, replay === undefined ? new Set() : this.#d.store.contributors(open.roundId));
      this.#nextRoundId = open.roundId + 1;
      this.#state = 'open';
      if (replay === undefined) this.#d.log.info({ ...logEvent('coordinator.round-resumed'), roundId: open.roundId, modelVersion: this.#d.model.version, newSession: true }, 'resumed the open round with a new secure aggregation session');
      else this.#d.log.info({ ...logEvent('coordinator.round-resumed'), roundId: open.roundId, replayed: replay.replayed, modelVersion: this.#d.model.version }, 'resumed the open round from the update log');
      this.#d.observer?.roundOpened?.({ roundId: open.roundId, modelVersion: this.#d.model.version, at: this.#now() });
    }
    this.#progress();
  }

  /** A client is ready (handshake done). A client already linked under its id is closed: the newer link wins. */
  connect(link: ClientLink): void {
    const id = link.clientId;
    if (this.#secagg !== undefined && !this.#secagg.admits(link)) return;
    const old = this.#links.get(id);
    this.#links.set(id, link);
    // An update on its way over the old connection will not come.
    this.#work.takePending(id);
    if (old !== undefined && old !== link) old.close(new ProtocolError('STRATA_ERR_SESSION_REPLACED', 'another connection authenticated as this client'));
    this.#d.registry.connected(id, link.profile, this.#now());
    const a = this.#work.assignment(id);
    const round = this.#round;
    if (a !== undefined && round !== undefined && round.secagg === undefined && a.roundId === round.id && this.#d.model.version === a.modelVersion && this.#state === 'open') {
      // A reconnect mid-round: the same assignment again (an agent resends the outcome it trained, not retrained).
      this.#assigner.send(link, a, round);
      return;
    }
    // Whatever it was doing on its old connection is lost with it.
    this.#work.drop(id);
    this.#progress();
  }

  disconnect(link: ClientLink): void {
    if (this.#links.get(link.clientId) !== link) return;
    this.#links.delete(link.clientId);
    this.#drop(link.clientId);
    this.#round?.secagg?.leave(link.clientId);
    // Back on a new connection it may be picked again in this round (an agent resends what it trained).
    this.#round?.assigned.delete(link.clientId);
    this.#d.registry.disconnected(link.clientId, this.#now());
    this.#progress();
  }

  /** A client's result message; its update frame is then requested from the link. */
  result(link: ClientLink, m: ResultMessage): void {
    const id = link.clientId;
    if (this.#links.get(id) !== link) return;
    const a = this.#work.assignment(id);
    if (a === undefined || a.roundId !== m.roundId || a.modelVersion !== m.modelVersion || this.#work.isPending(id)) {
      link.refuse(strayResultError(m, a, this.#round?.id ?? this.#nextRoundId), m.roundId);
      return;
    }
    const round = this.#round;
    const live = round !== undefined && this.#state === 'open' && (this.#d.strategy.mode === 'async' || a.roundId === round.id)
      // Secure aggregation: only a party of the round's session that dealt its shares may upload (not one of a failed session).
      && (round.secagg === undefined || round.secagg.canUpload(id));
    if (!live) {
      // Its round closed while it trained: not the client's fault. A frame it sends anyway is dropped.
      this.#work.answered(id);
      this.#work.discard(id, a.roundId);
      link.ack(a.roundId, false, 'STRATA_ERR_STALE_ROUND');
      this.#d.observer?.late?.({ roundId: a.roundId, clientId: id, at: this.#now(), result: m });
      this.#progress();
      return;
    }
    this.#work.pend(id, m, a);
    link.requestUpdate(a.roundId);
  }

  /** A secure-aggregation message from a client (keys, dealt shares, unmasking shares). */
  secaggMessage(link: ClientLink, m: SecAggAgentMessage): void {
    if (this.#links.get(link.clientId) !== link) return;
    deliverSecAggMessage(this.#round?.secagg, link, m);
  }

  /** The update frame that follows a result. */
  update(link: ClientLink, frame: Buffer): void {
    const id = link.clientId;
    if (this.#links.get(id) !== link) return;
    const p = this.#work.takePending(id);
    if (p === undefined) {
      const roundId = peekWeightFrameRoundId(frame);
      if (this.#work.takeDiscarded(id, roundId)) {
        link.ack(roundId!, false, 'STRATA_ERR_STALE_ROUND');
        return;
      }
      this.#reject(link, strayFrameError(frame, this.#round?.id ?? this.#nextRoundId), null);
      return;
    }
    this.#intake(link, frame, p.result, p.assignment);
  }

  #intake(link: ClientLink, data: Buffer, result: ResultMessage, a: Assignment): void {
    const round = this.#round;
    const now = this.#now();
    let u: TakenUpdate;
    // The ack, and the log line other programs key on, once the update is durable: at its group commit for a plain
    // update, at once for a masked one (nothing to commit).
    let line: object = {};
    const durable = (): void => {
      link.ack(a.roundId, true);
      this.#d.log.debug({ ...logEvent('coordinator.update-accepted'), ...line }, 'update accepted');
    };
    try {
      if (round === undefined || this.#state !== 'open') throw new ProtocolError('STRATA_ERR_STALE_ROUND', 'no round is open', { roundId: a.roundId });
      u = round.secagg !== undefined
        ? takeMaskedUpdate(this.#d, round.secagg, this.#secagg!.weighting, link.clientId, data, a, now)
        : takeUpdate(this.#d, this.#scratch, round, link.clientId, data, a, now, durable);
    } catch (err) {
      this.#reject(link, err, a.roundId);
      return;
    }
    round.contributors.add(link.clientId);
    line = { agentId: link.clientId, roundId: round.id, accepted: round.contributors.size, samples: u.numSamples, loss: result.metrics.loss };
    this.#work.answered(link.clientId);
    if (round.secagg !== undefined) durable();
    else this.#commits.soon();
    this.#d.observer?.accepted?.({ roundId: round.id, assignedRound: a.roundId, clientId: link.clientId, profile: link.profile, ...u, assignedAt: a.assignedAt, at: now, result });
    this.#progress();
  }

  #reject(link: ClientLink, err: unknown, roundId: number | null): void {
    if (!(err instanceof ProtocolError)) throw err;
    const now = this.#now();
    this.#d.metrics.updateRejected(err.code);
    this.#d.store.recordRejection(roundId, link.clientId, err.code, now);
    this.#d.registry.rejected(link.clientId, now);
    if (roundId !== null && this.#round?.id === roundId) this.#d.store.bumpRound(roundId, 'rejected');
    link.log.warn({ code: err.code, roundId }, 'update rejected');
    if (roundId !== null) link.ack(roundId, false, err.code);
    // Done before the refusal: one that closes the connection must not count the client dropped as well.
    if (roundId !== null) this.#work.answered(link.clientId, roundId);
    this.#d.observer?.rejected?.({ roundId, clientId: link.clientId, code: err.code, at: now });
    link.refuse(err, roundId ?? undefined);
    this.#progress();
  }

  /** The client is gone: whatever it was doing for the engine is dropped. */
  #drop(clientId: string): void {
    const a = this.#work.drop(clientId);
    if (a === undefined) return;
    const now = this.#now();
    this.#d.metrics.assignmentDropped();
    this.#d.registry.dropped(clientId, now);
    if (this.#round?.id === a.roundId) {
      this.#d.store.bumpRound(a.roundId, 'dropped');
      this.#round.unreplaced++;
    }
    this.#d.log.info({ ...logEvent('coordinator.agent-dropped'), agentId: clientId, roundId: a.roundId }, 'agent dropped out of its assignment');
    this.#d.observer?.dropped?.({ roundId: a.roundId, clientId, at: now });
  }

  #now(): number {
    return this.#d.clock.now();
  }

  /** A new round (with a new secure aggregation session when it is on; `aggregator` is then unused). */
  #newRound(id: number, aggregator: UpdateAggregator | undefined, contributors: Set<string>): OpenRound {
    const round: OpenRound = {
      id, startedAt: this.#now(), deadlineAt: 0, timer: undefined, aggregator: aggregator!, contributors, assigned: new Set(), selections: 0, unreplaced: 0,
    };
    this.#secagg?.begin(round);
    this.#armDeadline(round);
    return round;
  }

  /** Ends a round's uploads: closes it, or under secure aggregation unmasks it first (the session's callback then closes it). */
  #finishRound(round: OpenRound, closedBy: RoundSummary['closedBy']): void {
    const session = round.secagg;
    if (session === undefined) {
      this.#close(round, closedBy);
      return;
    }
    if (session.stage !== 'masking' || this.#state !== 'open') return;
    this.#state = 'unmasking';
    this.#secagg!.unmask(round, session, closedBy);
  }

  /** Results of the round still to be uploaded are no longer wanted; stragglers still training stay busy until they answer. */
  #withdraw(roundId: number): void {
    for (const id of this.#work.withdrawRound(roundId)) this.#links.get(id)?.withdrawUpdate(roundId);
  }

  #armDeadline(round: OpenRound): void {
    round.timer?.cancel();
    round.deadlineAt = this.#now() + this.#o.roundDeadlineMs;
    round.timer = this.#d.clock.setTimer(this.#o.roundDeadlineMs, () => this.#onDeadline(round));
  }

  #onDeadline(round: OpenRound): void {
    if (this.#round !== round) return;
    const session = round.secagg;
    if (session !== undefined && this.#state === 'unmasking') {
      // Parties still silent are dropped; the shares in hand reconstruct, or the session fails and the round starts a new one.
      session.finishNow();
      return;
    }
    if (this.#state !== 'open') return;
    if (round.contributors.size >= this.#minNeeded()) {
      this.#finishRound(round, 'deadline');
      return;
    }
    if (session !== undefined && !session.accepting) {
      // No party can join a session whose graph is fixed: too few uploads means a new session.
      this.#secagg!.restart(round, 'STRATA_ERR_SECAGG_ABORTED', `${round.contributors.size} masked updates at the deadline, ${this.#minNeeded()} needed`);
      return;
    }
    // Too few updates: keep what arrived, top up from idle clients (unanswered assignments have expired), extend.
    this.#d.log.warn({ ...logEvent('coordinator.deadline-extended'), roundId: round.id, accepted: round.contributors.size, needed: this.#minNeeded() }, 'round deadline passed below the minimum completion; extending');
    this.#armDeadline(round);
    this.#progress();
  }

  #minNeeded(): number {
    return Math.max(1, Math.ceil(this.#o.minCompletion * this.#o.perRound));
  }

  /** Assignments of `round` the engine still counts on (see `ClientWork.outstanding`). */
  #outstanding(round: OpenRound): number {
    return this.#work.outstanding(round.id, this.#now());
  }

  /** Called after every event: open a round when enough clients wait, top up, close when done. */
  #progress(): void {
    if (this.#state === 'waiting' && !this.#draining) {
      // FedBuff's clients never wait for a round: every linked client counts; a synchronous round needs idle ones.
      const available = this.#d.strategy.mode === 'async' ? this.#links.size : this.#assigner.idle(undefined).length;
      if (available < this.#o.minClients) return;
      const id = this.#nextRoundId++;
      this.#d.store.openRound(id, this.#d.model.version, this.#now());
      this.#round = this.#newRound(id, this.#d.strategy.createAggregator(this.#d.model.numParams), new Set());
      this.#state = 'open';
      this.#d.log.info({ roundId: id, modelVersion: this.#d.model.version, ready: this.#links.size }, 'round opened');
      this.#d.observer?.roundOpened?.({ roundId: id, modelVersion: this.#d.model.version, at: this.#now() });
    }
    const round = this.#round;
    if (this.#state !== 'open' || round === undefined) return;
    if (round.contributors.size >= this.#o.perRound) {
      this.#finishRound(round, 'quorum');
      return;
    }
    const session = round.secagg;
    if (session !== undefined && session.stage === 'masking' && session.pendingUploads === 0 && round.contributors.size >= this.#minNeeded()) {
      // Every party that can upload did: no need to wait for the deadline.
      this.#finishRound(round, 'quorum');
      return;
    }
    // A session whose graph is fixed takes no more parties.
    if (session !== undefined && !session.accepting) return;
    if (this.#draining) {
      if (this.#outstanding(round) === 0 && this.#work.pendingCount === 0) this.#drainWaiter?.();
      return;
    }
    this.#assigner.topUp(round);
  }

  /**
   * Closes a round: aggregate, persist, advance the model, and open the next
   * round at once; the new model's evaluation runs beside it. Synchronous up
   * to the evaluation, so a caller that delivered the event which closed the
   * round sees the next round's assignments already sent.
   */
  #close(round: OpenRound, closedBy: RoundSummary['closedBy']): void {
    if (this.#state !== 'open' && this.#state !== 'unmasking') return;
    // Its last updates are committed (and acked) before it is applied.
    if (!this.#commits.now()) return;
    this.#state = 'aggregating';
    round.timer?.cancel();
    const strategy = this.#d.strategy;
    let applied: ReturnType<typeof applyRound>;
    try {
      applied = applyRound(this.#d, round, closedBy);
    } catch (err) {
      this.#fatal(err, 'closing the round failed; stopping');
      return;
    }
    const { next, summary } = applied;
    if (strategy.mode === 'sync') this.#withdraw(round.id);
    this.#round = undefined;
    this.#d.metrics.roundCompleted(summary.seconds);
    const spent = summary.modelVersion >= this.#o.rounds ? null : strategy.budgetSpent?.({ population: Math.max(this.#d.registry.size, this.#o.perRound), perRound: this.#o.perRound }) ?? null;
    if (spent !== null) this.#d.log.warn({ roundId: summary.roundId, modelVersion: summary.modelVersion, ...summary.privacy }, `privacy budget spent: ${spent}; training stops`);
    const last = summary.modelVersion >= this.#o.rounds || spent !== null;
    this.#lastClosed ||= last;
    this.#evaluations.add(next, summary, last);
    this.#drainWaiter?.();
    if (last) return;
    this.#state = this.#draining ? 'draining' : 'waiting';
    this.#progress();
  }

  /** The store failed under the engine: it stops (the process's owner decides what next). */
  #fatal(err: unknown, message: string): void {
    this.#d.log.fatal({ err }, message);
    this.#state = 'stopped';
    this.#drainWaiter?.();
    this.#d.observer?.finished?.();
  }

  #finish(): void {
    this.#state = 'finished';
    this.#d.observer?.finished?.();
  }

  /** Resolves when every evaluation started so far is done. */
  async settled(): Promise<void> {
    await this.#evaluations.settled();
  }

  /**
   * Stop opening rounds and assigning; give the open round up to
   * `timeoutMs` (on the engine's clock) to finish with the clients already
   * working on it. If it does not, it is closed with what it has when that
   * reaches the minimum completion, else it stays open in the store (its
   * accepted updates are persisted) and the next start resumes it.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const round = this.#round;
    if (this.#state === 'open' && round !== undefined && (this.#outstanding(round) > 0 || this.#work.pendingCount > 0)) {
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(timeoutMs) ? this.#d.clock.setTimer(timeoutMs, () => resolve()) : undefined;
        this.#drainWaiter = () => {
          timer?.cancel();
          resolve();
        };
      });
      this.#drainWaiter = undefined;
    }
    const open = this.#round;
    // A secure aggregation round is not unmasked in a drain: it stays open and the next start runs it with a new session.
    if (this.#state === 'open' && open !== undefined && open.secagg === undefined && open.contributors.size >= this.#minNeeded()) this.#close(open, 'drain');
    this.#commits.now();
    await this.#evaluations.settled();
    this.#round?.timer?.cancel();
    if (this.#state !== 'finished') this.#state = 'stopped';
  }
}
