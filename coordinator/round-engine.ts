import { Rng } from '../ml/rng.js';
import {
  ProtocolError, decodeWeightFrameHeader, encodeWeightFrame, peekWeightFrameRoundId, type ProtocolErrorCode, type ResultMessage,
} from '../protocol/index.js';
import type { ClientLink } from './client-link.js';
import { selectClients } from './client-selection.js';
import type { CompiledCoordinatorOptions } from './coordinator-options.js';
import { clipScale } from './strategies/clipping.js';
import type { UpdateAggregator } from './strategies/strategy.js';
import { validateUpdate } from './update-validator.js';
import type { Assignment, EngineState, Evaluation, OpenRound, RoundEngineDeps, RoundSummary } from './round-engine-types.js';

/**
 * Runs rounds, over any transport and on any clock: selects K
 * (over-committed) idle clients, sends them the assignment and the model,
 * validates and persists each update before acking it, folds it into the
 * strategy's aggregator, and closes the round at the K-th update, or at the
 * deadline with at least the minimum completion (else the deadline is
 * extended and the round topped up), so stragglers and dropouts never stall
 * it. A straggler stays busy until its late result comes (answered as not
 * needed, without blame) or its assignment expires. In `async` mode
 * (FedBuff) every free client trains and a round is the buffer of K updates.
 *
 * The daemon drives it from WebSocket sessions on the system clock; a
 * simulation from virtual clients on a virtual clock: the same rounds.
 */
export class RoundEngine {
  readonly #d: RoundEngineDeps;
  readonly #o: CompiledCoordinatorOptions;
  readonly #links = new Map<string, ClientLink>();
  /** Outstanding work: client -> its assignment, until its result is taken, it disconnects, or the assignment expires. */
  readonly #assignments = new Map<string, Assignment>();
  /** Results whose update frame is still to come. */
  readonly #pending = new Map<string, { result: ResultMessage; assignment: Assignment }>();
  /** Client -> round whose update frame is no longer wanted (its round closed first): dropped without blame when it comes. */
  readonly #discard = new Map<string, number>();
  #state: EngineState = 'idle';
  #round: OpenRound | undefined;
  #nextRoundId = 1;
  #scratch: Float32Array;
  #lastEval: Evaluation | null = null;
  /** Evaluations run one after another, beside the next round. */
  #evaluations: Promise<void> = Promise.resolve();
  #draining = false;
  #drainWaiter: (() => void) | undefined;

  constructor(deps: RoundEngineDeps) {
    this.#d = deps;
    this.#o = deps.options;
    this.#scratch = new Float32Array(deps.model.numParams);
  }

  get state(): EngineState { return this.#state; }
  get lastEvaluation(): Evaluation | null { return this.#lastEval; }
  get connectedClients(): number { return this.#links.size; }
  get knownClients(): number { return this.#d.registry.size; }
  /** The open round's id, or null. */
  get roundId(): number | null { return this.#round?.id ?? null; }

  snapshot(): { state: EngineState; roundId: number | null; modelVersion: number; accepted: number; assigned: number; deadlineAt: number | null } {
    const round = this.#round;
    return {
      state: this.#state, roundId: round?.id ?? null, modelVersion: this.#d.model.version,
      accepted: round?.contributors.size ?? 0, assigned: round === undefined ? 0 : this.#outstanding(round), deadlineAt: round?.deadlineAt ?? null,
    };
  }

  /** Resume the round that was open when the process stopped (replaying its persisted updates), or wait for clients. */
  start(lastEval: Evaluation | null): void {
    this.#lastEval = lastEval;
    const rounds = this.#d.store.rounds();
    this.#nextRoundId = (rounds.at(-1)?.roundId ?? 0) + 1;
    if (this.#d.model.version >= this.#o.rounds) return this.#finish();
    const open = this.#d.store.openRoundRow();
    if (open !== undefined) {
      const aggregator = this.#d.strategy.createAggregator(this.#d.model.numParams);
      let replayed = 0;
      for (const u of this.#d.store.pendingUpdates(open.roundId)) {
        aggregator.add(u.delta, u.weight, u.scale);
        replayed++;
      }
      this.#d.store.bumpRound(open.roundId, 'resumed');
      this.#round = this.#newRound(open.roundId, aggregator, this.#d.store.contributors(open.roundId));
      this.#nextRoundId = open.roundId + 1;
      this.#state = 'open';
      this.#d.log.info({ roundId: open.roundId, replayed, modelVersion: this.#d.model.version }, 'resumed the open round from the update log');
      this.#d.observer?.roundOpened?.({ roundId: open.roundId, modelVersion: this.#d.model.version, at: this.#now() });
    } else {
      this.#state = 'waiting';
    }
    this.#progress();
  }

  /** A client is ready (handshake done). A client already linked under its id is closed: the newer link wins. */
  connect(link: ClientLink): void {
    const id = link.clientId;
    const old = this.#links.get(id);
    this.#links.set(id, link);
    this.#pending.delete(id);
    if (old !== undefined && old !== link) old.close(new ProtocolError('STRATA_ERR_SESSION_REPLACED', 'another connection authenticated as this client'));
    this.#d.registry.connected(id, link.profile, this.#now());
    const a = this.#assignments.get(id);
    const round = this.#round;
    if (a !== undefined && round !== undefined && a.roundId === round.id && this.#d.model.version === a.modelVersion && this.#state === 'open') {
      // A reconnect mid-round: the same assignment again (an agent resends the outcome it trained, not retrained).
      this.#sendAssignment(link, a);
      return;
    }
    // Whatever it was doing on its old connection is lost with it.
    this.#assignments.delete(id);
    this.#progress();
  }

  disconnect(link: ClientLink): void {
    if (this.#links.get(link.clientId) !== link) return;
    this.#links.delete(link.clientId);
    this.#discard.delete(link.clientId);
    this.#drop(link.clientId, null);
    // Back on a new connection it may be picked again in this round (an agent resends what it trained).
    this.#round?.assigned.delete(link.clientId);
    this.#d.registry.disconnected(link.clientId, this.#now());
    this.#progress();
  }

  /** The client could not do its assignment (it says so, or its transport knows): it stays linked and may be picked again later. */
  failed(link: ClientLink, code: ProtocolErrorCode): void {
    if (this.#links.get(link.clientId) !== link) return;
    this.#drop(link.clientId, code);
    this.#progress();
  }

  /** A client's result message; its update frame is then requested from the link. */
  result(link: ClientLink, m: ResultMessage): void {
    const id = link.clientId;
    const a = this.#assignments.get(id);
    if (a === undefined || a.roundId !== m.roundId || a.modelVersion !== m.modelVersion || this.#pending.has(id)) {
      const current = this.#round?.id ?? this.#nextRoundId;
      const stale = m.roundId < current || (a !== undefined && m.modelVersion < a.modelVersion);
      link.refuse(new ProtocolError(stale ? 'STRATA_ERR_STALE_ROUND' : 'STRATA_ERR_UNEXPECTED_MESSAGE',
        stale ? `round ${m.roundId} is over (open round: ${current})` : 'no assignment awaits this result', { roundId: m.roundId }), m.roundId);
      return;
    }
    const round = this.#round;
    const live = round !== undefined && this.#state === 'open' && (this.#d.strategy.mode === 'async' || a.roundId === round.id);
    if (!live) {
      // Its round closed while it trained: not the client's fault. A frame it sends anyway is dropped.
      this.#assignments.delete(id);
      this.#discard.set(id, a.roundId);
      link.ack(a.roundId, false, 'STRATA_ERR_STALE_ROUND');
      this.#d.observer?.late?.({ roundId: a.roundId, clientId: id, at: this.#now(), result: m });
      this.#progress();
      return;
    }
    this.#pending.set(id, { result: m, assignment: a });
    link.requestUpdate(a.roundId);
  }

  /** The update frame that follows a result. */
  update(link: ClientLink, frame: Buffer): void {
    const id = link.clientId;
    const p = this.#pending.get(id);
    if (p === undefined) {
      const discarded = this.#discard.get(id);
      if (discarded !== undefined && peekWeightFrameRoundId(frame) === discarded) {
        this.#discard.delete(id);
        link.ack(discarded, false, 'STRATA_ERR_STALE_ROUND');
        return;
      }
      let err = new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'weight frame without a result message first');
      try {
        const h = decodeWeightFrameHeader(frame);
        if (h.roundId < (this.#round?.id ?? this.#nextRoundId)) err = new ProtocolError('STRATA_ERR_STALE_ROUND', `round ${h.roundId} is over`, { roundId: h.roundId });
      } catch (e) {
        if (e instanceof ProtocolError) err = e;
      }
      this.#reject(link, err, null);
      return;
    }
    this.#pending.delete(id);
    this.#intake(link, frame, p.result, p.assignment);
  }

  #intake(link: ClientLink, data: Buffer, result: ResultMessage, a: Assignment): void {
    const round = this.#round;
    const model = this.#d.model;
    const t0 = performance.now();
    let v;
    let weight: number | null;
    try {
      if (round === undefined || this.#state !== 'open') throw new ProtocolError('STRATA_ERR_STALE_ROUND', 'no round is open', { roundId: a.roundId });
      v = validateUpdate(data, {
        roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: model.layoutHash, numParams: model.numParams,
        currentVersion: model.version, currentWeights: model.weights, maxNorm: this.#o.maxUpdateNorm,
      }, this.#scratch);
      weight = this.#d.strategy.updateWeight(v.header.numSamples, model.version - v.header.modelVersion);
      if (weight === null) throw new ProtocolError('STRATA_ERR_STALE_ROUND', `update is ${model.version - v.header.modelVersion} versions stale`);
    } catch (err) {
      this.#reject(link, err, a.roundId);
      return;
    }
    const scale = clipScale(v.norm, this.#o.clipNorm);
    const now = this.#now();
    const t1 = performance.now();
    // Durable before the ack: the payload and its log row commit together.
    this.#d.store.acceptUpdate({
      roundId: round.id, assignedRound: a.roundId, agentId: link.clientId, modelVersion: v.header.modelVersion, numSamples: v.header.numSamples,
      weight, scale, norm: v.norm, bytes: v.payloadBytes, receivedAt: now,
    }, Buffer.from(v.delta.buffer, v.delta.byteOffset, v.delta.byteLength));
    const t2 = performance.now();
    round.aggregator.add(v.delta, weight, scale);
    const t3 = performance.now();
    const m = this.#d.metrics;
    m.aggregationSeconds += (t1 - t0 + t3 - t2) / 1000;
    m.persistSeconds += (t2 - t1) / 1000;
    m.aggregationBytes += v.payloadBytes;
    m.updatesAccepted++;
    round.contributors.add(link.clientId);
    this.#assignments.delete(link.clientId);
    this.#d.registry.accepted(link.clientId, (now - a.assignedAt) / 1000, now);
    link.ack(a.roundId, true);
    this.#d.observer?.accepted?.({
      roundId: round.id, assignedRound: a.roundId, clientId: link.clientId, profile: link.profile, numSamples: v.header.numSamples,
      staleness: model.version - v.header.modelVersion, weight, norm: v.norm, scale, assignedAt: a.assignedAt, at: now, result,
    });
    this.#d.log.debug({ agentId: link.clientId, roundId: round.id, accepted: round.contributors.size, samples: v.header.numSamples, loss: result.metrics.loss }, 'update accepted');
    this.#progress();
  }

  #reject(link: ClientLink, err: unknown, roundId: number | null): void {
    if (!(err instanceof ProtocolError)) throw err;
    const now = this.#now();
    this.#d.metrics.bump(this.#d.metrics.updatesRejected, err.code);
    this.#d.store.recordRejection(roundId, link.clientId, err.code, now);
    this.#d.registry.rejected(link.clientId, now);
    if (roundId !== null && this.#round?.id === roundId) this.#d.store.bumpRound(roundId, 'rejected');
    link.log.warn({ code: err.code, roundId }, 'update rejected');
    if (roundId !== null) link.ack(roundId, false, err.code);
    if (roundId !== null && this.#assignments.get(link.clientId)?.roundId === roundId) this.#assignments.delete(link.clientId);
    this.#d.observer?.rejected?.({ roundId, clientId: link.clientId, code: err.code, at: now });
    link.refuse(err, roundId ?? undefined);
    this.#progress();
  }

  /** The client no longer works on its assignment (disconnect or failure). */
  #drop(clientId: string, code: ProtocolErrorCode | null): void {
    this.#pending.delete(clientId);
    const a = this.#assignments.get(clientId);
    if (a === undefined) return;
    this.#assignments.delete(clientId);
    const now = this.#now();
    this.#d.metrics.droppedAssignments++;
    this.#d.registry.dropped(clientId, now);
    if (this.#round?.id === a.roundId) this.#d.store.bumpRound(a.roundId, 'dropped');
    this.#d.log.info({ agentId: clientId, roundId: a.roundId, code }, 'agent dropped out of its assignment');
    this.#d.observer?.dropped?.({ roundId: a.roundId, clientId, at: now, code });
  }

  #now(): number {
    return this.#d.clock.now();
  }

  #newRound(id: number, aggregator: UpdateAggregator, contributors: Set<string>): OpenRound {
    const round: OpenRound = { id, startedAt: this.#now(), deadlineAt: 0, timer: undefined, aggregator, contributors, assigned: new Set(), selections: 0 };
    this.#armDeadline(round);
    return round;
  }

  #armDeadline(round: OpenRound): void {
    round.timer?.cancel();
    round.deadlineAt = this.#now() + this.#o.roundDeadlineMs;
    round.timer = this.#d.clock.setTimer(this.#o.roundDeadlineMs, () => this.#onDeadline(round));
  }

  #onDeadline(round: OpenRound): void {
    if (this.#round !== round || this.#state !== 'open') return;
    if (round.contributors.size >= this.#minNeeded()) {
      this.#close(round, 'deadline');
      return;
    }
    // Too few updates: keep what arrived, top up from idle clients (unanswered assignments have expired), extend.
    this.#d.log.warn({ roundId: round.id, accepted: round.contributors.size, needed: this.#minNeeded() }, 'round deadline passed below the minimum completion; extending');
    this.#armDeadline(round);
    this.#progress();
  }

  #minNeeded(): number {
    return Math.max(1, Math.ceil(this.#o.minCompletion * this.#o.perRound));
  }

  #live(a: Assignment | undefined): a is Assignment {
    return a !== undefined && a.expiresAt > this.#now();
  }

  /** Live assignments of `round` not answered yet. */
  #outstanding(round: OpenRound): number {
    let n = 0;
    for (const a of this.#assignments.values()) if (a.roundId === round.id && this.#live(a)) n++;
    return n;
  }

  /** Linked clients with no live assignment, no update in `round` yet and not assigned in it before. */
  #idle(round: OpenRound | undefined): ClientLink[] {
    const out: ClientLink[] = [];
    for (const link of this.#links.values()) {
      const id = link.clientId;
      if (this.#live(this.#assignments.get(id)) || this.#pending.has(id)) continue;
      if (round !== undefined && (round.contributors.has(id) || round.assigned.has(id))) continue;
      out.push(link);
    }
    return out;
  }

  /** Called after every event: open a round when enough clients wait, top up, close when done. */
  #progress(): void {
    if (this.#state === 'waiting' && !this.#draining) {
      // FedBuff's clients never wait for a round: every linked client counts; a synchronous round needs idle ones.
      const available = this.#d.strategy.mode === 'async' ? this.#links.size : this.#idle(undefined).length;
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
      this.#close(round, 'quorum');
      return;
    }
    if (this.#draining) {
      if (this.#outstanding(round) === 0 && this.#pending.size === 0) this.#drainWaiter?.();
      return;
    }
    const sync = this.#d.strategy.mode === 'sync';
    const desired = sync ? Math.ceil(this.#o.perRound * this.#o.overCommit) : Number.POSITIVE_INFINITY;
    const need = desired - round.contributors.size - this.#outstanding(round);
    if (need <= 0) return;
    // Candidates in id order and a draw seeded by (seed, round, selection): a round's picks follow from its seed
    // and the events before it, whatever order clients connected in.
    const idle = this.#idle(round).sort((x, y) => (x.clientId < y.clientId ? -1 : x.clientId > y.clientId ? 1 : 0));
    if (idle.length === 0) return;
    const byId = new Map(idle.map((l) => [l.clientId, l] as const));
    const records = idle.flatMap((l) => this.#d.registry.get(l.clientId) ?? []);
    const rng = new Rng(selectionSeed(this.#o.seed, round.id, round.selections++));
    const picked = selectClients(records, Math.min(need, records.length), this.#o.selection, rng);
    for (const c of picked) this.#assign(byId.get(c.agentId)!, round);
    if (picked.length > 0) this.#d.store.bumpRound(round.id, 'selected', picked.length);
  }

  #assign(link: ClientLink, round: OpenRound): void {
    const now = this.#now();
    const a: Assignment = { roundId: round.id, modelVersion: this.#d.model.version, assignedAt: now, expiresAt: now + this.#o.roundDeadlineMs };
    this.#assignments.set(link.clientId, a);
    this.#discard.delete(link.clientId);
    round.assigned.add(link.clientId);
    this.#sendAssignment(link, a);
    this.#d.observer?.assigned?.({ roundId: round.id, clientId: link.clientId, profile: link.profile, modelVersion: a.modelVersion, at: now });
  }

  #sendAssignment(link: ClientLink, a: Assignment): void {
    const model = this.#d.model;
    const now = this.#now();
    const deadlineAt = Math.round(this.#round?.deadlineAt ?? now + this.#o.roundDeadlineMs);
    link.assign({
      type: 'round-assignment', roundId: a.roundId, modelVersion: a.modelVersion,
      deadlineMs: Math.max(1, Math.round(deadlineAt - now)), deadlineAt, layoutHash: model.layoutHash, numParams: model.numParams, updateKind: 'delta',
      config: { ...this.#o.training, ...this.#d.strategy.configureRound(a.roundId), seed: roundSeed(this.#o.seed, a.roundId) },
    }, model.frame(a.roundId, encodeWeightFrame));
  }

  /**
   * Closes a round: aggregate, persist, advance the model, and open the next
   * round at once; the new model's evaluation runs beside it. Synchronous up
   * to the evaluation, so a caller that delivered the event which closed the
   * round sees the next round's assignments already sent.
   */
  #close(round: OpenRound, closedBy: RoundSummary['closedBy']): void {
    if (this.#state !== 'open') return;
    this.#state = 'aggregating';
    round.timer?.cancel();
    const { model, strategy, store } = this.#d;
    let summary: Omit<RoundSummary, 'accuracy' | 'loss'>;
    let next: Float32Array;
    try {
      const aggregate = round.aggregator.result();
      next = strategy.applyAggregate(model.weights.slice(), aggregate);
      const newVersion = model.version + 1;
      const closedAt = this.#now();
      const applied = store.completeRound({
        roundId: round.id, newVersion, layoutHash: model.layoutHash, weights: next, strategyState: strategy.exportState(), closedAt,
      });
      model.advance(next, newVersion);
      this.#d.metrics.roundsCompleted++;
      this.#d.registry.roundDone(round.contributors);
      summary = {
        roundId: round.id, modelVersion: newVersion, applied, seconds: (closedAt - round.startedAt) / 1000, openedAt: round.startedAt, closedAt,
        contributors: [...round.contributors].sort(), closedBy,
      };
    } catch (err) {
      this.#d.log.fatal({ err }, 'closing the round failed; stopping');
      this.#state = 'stopped';
      this.#drainWaiter?.();
      this.#d.observer?.finished?.();
      return;
    }
    if (strategy.mode === 'sync') {
      // Results of this round still to be uploaded are no longer wanted; stragglers still training stay busy until they answer.
      for (const [id, p] of [...this.#pending]) {
        if (p.assignment.roundId !== round.id) continue;
        this.#pending.delete(id);
        this.#assignments.delete(id);
        this.#discard.set(id, round.id);
        this.#links.get(id)?.withdrawUpdate(round.id);
      }
    }
    this.#round = undefined;
    this.#d.metrics.roundSeconds.push(summary.seconds);
    const last = summary.modelVersion >= this.#o.rounds;
    this.#evaluate(next, summary, last);
    this.#drainWaiter?.();
    if (last) return;
    this.#state = this.#draining ? 'draining' : 'waiting';
    this.#progress();
  }

  #evaluate(weights: Float32Array, s: Omit<RoundSummary, 'accuracy' | 'loss'>, last: boolean): void {
    const run = async (): Promise<void> => {
      let evaluation: Evaluation | null = null;
      if (this.#d.evaluate) {
        evaluation = await this.#d.evaluate(weights);
        this.#d.store.setModelEvaluation(s.modelVersion, evaluation.accuracy, evaluation.loss);
        this.#lastEval = evaluation;
      }
      const summary: RoundSummary = { ...s, accuracy: evaluation?.accuracy ?? null, loss: evaluation?.loss ?? null };
      this.#d.log.info({ roundId: s.roundId, modelVersion: s.modelVersion, applied: s.applied, seconds: s.seconds, accuracy: summary.accuracy, loss: summary.loss }, 'round completed');
      this.#d.observer?.roundCompleted?.(summary);
    };
    this.#evaluations = this.#evaluations.then(run).catch((err: unknown) => {
      this.#d.log.error({ err, roundId: s.roundId }, 'evaluating the new model failed');
    });
    if (last) void this.#evaluations.then(() => this.#finish());
  }

  #finish(): void {
    this.#state = 'finished';
    this.#d.observer?.finished?.();
  }

  /** Resolves when every evaluation started so far is done. */
  async settled(): Promise<void> {
    await this.#evaluations;
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
    if (this.#state === 'open' && round !== undefined && (this.#outstanding(round) > 0 || this.#pending.size > 0)) {
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
    if (this.#state === 'open' && open !== undefined && open.contributors.size >= this.#minNeeded()) this.#close(open, 'drain');
    await this.#evaluations;
    this.#round?.timer?.cancel();
    if (this.#state !== 'finished') this.#state = 'stopped';
  }
}

/** The training seed an assignment carries (a device mixes in its own id). */
export function roundSeed(seed: number, roundId: number): number {
  return (seed * 1_000_003 + roundId) >>> 0;
}

function selectionSeed(seed: number, roundId: number, selection: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(roundId, 0x85ebca6b) ^ Math.imul(selection + 1, 0xc2b2ae35)) >>> 0;
}
