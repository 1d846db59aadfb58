import { Rng } from '../ml/rng.js';
import { ProtocolError, UPLOAD_GRANT_FEATURE, decodeWeightFrameHeader, encodeWeightFrame, peekWeightFrameRoundId, type Message } from '../protocol/index.js';
import type { AgentSession } from './agent-session.js';
import { selectClients } from './client-selection.js';
import type { CompiledCoordinatorOptions } from './coordinator-options.js';
import { clipScale } from './strategies/clipping.js';
import type { UpdateAggregator } from './strategies/strategy.js';
import { validateUpdate } from './update-validator.js';
import type { Assignment, EngineState, Evaluation, OpenRound, RoundEngineDeps, RoundSummary } from './round-engine-types.js';
import { UploadGate } from './upload-gate.js';

/**
 * Runs rounds: selects K (over-committed) ready agents, sends the assignment
 * and the model, validates and persists each update before acking it, folds
 * it into the strategy's aggregator, and closes the round at the K-th update,
 * or at the deadline with at least the minimum completion (else the deadline
 * is extended and the round topped up) — so stragglers and dropouts never
 * stall it. In `async` mode (FedBuff) every free agent trains and the round
 * is the buffer of K updates.
 */
export class RoundEngine {
  readonly #d: RoundEngineDeps;
  readonly #o: CompiledCoordinatorOptions;
  readonly #rng: Rng;
  readonly #sessions = new Map<string, AgentSession>();
  readonly #assignments = new Map<string, Assignment>();
  /** Results whose update frame is still to come: agent -> its assignment and the loss it reported (all a result is kept for). */
  readonly #pending = new Map<string, { loss: number; assignment: Assignment }>();
  readonly #uploads: UploadGate;
  /** Admitted uploads whose round closed before the frame came: agent -> round. The late frame is dropped without blame. */
  readonly #withdrawn = new Map<string, number>();
  #state: EngineState = 'idle';
  #round: OpenRound | undefined;
  #nextRoundId = 1;
  #scratch: Float32Array;
  #lastEval: Evaluation | null = null;
  #closing: Promise<void> | undefined;
  #draining = false;

  constructor(deps: RoundEngineDeps) {
    this.#d = deps;
    this.#o = deps.options;
    this.#uploads = new UploadGate(this.#o.maxConcurrentUploads);
    this.#rng = new Rng(deps.options.seed);
    this.#scratch = new Float32Array(deps.model.numParams);
  }

  get state(): EngineState { return this.#state; }
  get lastEvaluation(): Evaluation | null { return this.#lastEval; }
  get sessions(): ReadonlyMap<string, AgentSession> { return this.#sessions; }
  get knownClients(): number { return this.#d.registry.size; }

  snapshot(): { state: EngineState; roundId: number | null; modelVersion: number; accepted: number; assigned: number; deadlineAt: number | null } {
    return {
      state: this.#state, roundId: this.#round?.id ?? null, modelVersion: this.#d.model.version,
      accepted: this.#round?.contributors.size ?? 0, assigned: this.#assignments.size, deadlineAt: this.#round?.deadlineAt ?? null,
    };
  }

  /** Resume the round that was open when the process stopped (replaying its persisted updates), or wait for agents. */
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
    } else {
      this.#state = 'waiting';
    }
    this.#progress();
  }

  addSession(s: AgentSession): void {
    const old = this.#sessions.get(s.agentId);
    this.#sessions.set(s.agentId, s);
    if (old !== undefined && old !== s) {
      this.#forgetTransfer(s.agentId);
      old.fail(new ProtocolError('STRATA_ERR_SESSION_REPLACED', 'another connection authenticated as this agent'));
    }
    this.#d.registry.connected(s.agentId, s.profile, Date.now());
    const a = this.#assignments.get(s.agentId);
    if (a !== undefined && this.#round !== undefined && a.roundId === this.#round.id && this.#d.model.version === a.modelVersion) this.#sendAssignment(s, a);
    else this.#progress();
  }

  removeSession(s: AgentSession): void {
    if (this.#sessions.get(s.agentId) !== s) return;
    this.#sessions.delete(s.agentId);
    this.#forgetTransfer(s.agentId);
    this.#withdrawn.delete(s.agentId);
    const now = Date.now();
    if (this.#assignments.delete(s.agentId)) {
      this.#d.metrics.droppedAssignments++;
      this.#d.registry.dropped(s.agentId, now);
      if (this.#round) this.#d.store.bumpRound(this.#round.id, 'dropped');
      s.log.info({ roundId: this.#round?.id }, 'agent dropped out of its assignment');
    }
    this.#d.registry.disconnected(s.agentId, now);
    this.#progress();
  }

  onMessage(s: AgentSession, m: Message): void {
    if (m.type !== 'result') {
      s.fail(new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', `a coordinator does not accept "${m.type}" messages`));
      return;
    }
    const a = this.#assignments.get(s.agentId);
    if (a === undefined || a.roundId !== m.roundId || a.modelVersion !== m.modelVersion || this.#pending.has(s.agentId)) {
      const current = this.#round?.id ?? this.#nextRoundId;
      const stale = m.roundId < current || (a !== undefined && m.modelVersion < a.modelVersion);
      s.countError();
      s.fail(new ProtocolError(stale ? 'STRATA_ERR_STALE_ROUND' : 'STRATA_ERR_UNEXPECTED_MESSAGE',
        stale ? `round ${m.roundId} is over (open round: ${current})` : 'no assignment awaits this result', { roundId: m.roundId }), m.roundId);
      return;
    }
    this.#pending.set(s.agentId, { loss: m.metrics.loss, assignment: a });
    this.#uploads.request(s, a.roundId);
  }

  onBinary(s: AgentSession, data: Buffer): void {
    const p = this.#pending.get(s.agentId);
    const withdrawn = this.#withdrawn.get(s.agentId);
    if (withdrawn !== undefined) this.#withdrawn.delete(s.agentId);
    if (p === undefined && withdrawn !== undefined && peekWeightFrameRoundId(data) === withdrawn) {
      s.send({ type: 'update-ack', roundId: withdrawn, accepted: false, code: 'STRATA_ERR_STALE_ROUND' });
      return;
    }
    if (p === undefined) {
      let err = new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'weight frame without a result message first');
      try {
        const h = decodeWeightFrameHeader(data);
        if (h.roundId < (this.#round?.id ?? this.#nextRoundId)) err = new ProtocolError('STRATA_ERR_STALE_ROUND', `round ${h.roundId} is over`, { roundId: h.roundId });
      } catch (e) {
        if (e instanceof ProtocolError) err = e;
      }
      this.#reject(s, err, null);
      return;
    }
    this.#pending.delete(s.agentId);
    // A paused agent's frame can still arrive from bytes read before the pause.
    this.#uploads.dequeue(s.agentId);
    try {
      this.#intake(s, data, p.loss, p.assignment);
    } finally {
      // After the intake: if this update closed the round, nobody is granted an upload it no longer needs.
      this.#releaseUpload(s.agentId);
    }
  }

  #intake(s: AgentSession, data: Buffer, loss: number, a: Assignment): void {
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
      this.#reject(s, err, a.roundId);
      return;
    }
    const scale = clipScale(v.norm, this.#o.clipNorm);
    const now = Date.now();
    const t1 = performance.now();
    // Durable before the ack: the payload and its log row commit together.
    this.#d.store.acceptUpdate({
      roundId: round.id, assignedRound: a.roundId, agentId: s.agentId, modelVersion: v.header.modelVersion, numSamples: v.header.numSamples,
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
    round.contributors.add(s.agentId);
    this.#assignments.delete(s.agentId);
    this.#d.registry.accepted(s.agentId, (now - a.assignedAt) / 1000, now);
    s.send({ type: 'update-ack', roundId: a.roundId, accepted: true });
    this.#d.log.debug({ agentId: s.agentId, roundId: round.id, accepted: round.contributors.size, samples: v.header.numSamples, loss }, 'update accepted');
    this.#progress();
  }

  #reject(s: AgentSession, err: unknown, roundId: number | null): void {
    if (!(err instanceof ProtocolError)) throw err;
    const now = Date.now();
    this.#d.metrics.bump(this.#d.metrics.updatesRejected, err.code);
    this.#d.store.recordRejection(roundId, s.agentId, err.code, now);
    this.#d.registry.rejected(s.agentId, now);
    if (roundId !== null && this.#round?.id === roundId) this.#d.store.bumpRound(roundId, 'rejected');
    s.log.warn({ code: err.code, roundId }, 'update rejected');
    if (roundId !== null) s.send({ type: 'update-ack', roundId, accepted: false, code: err.code });
    s.countError();
    s.fail(err, roundId ?? undefined);
    if (roundId !== null && this.#assignments.get(s.agentId)?.roundId === roundId) this.#assignments.delete(s.agentId);
    this.#progress();
  }

  /**
   * Drop an agent's announced upload. A queued agent is resumed if paused;
   * one waiting for a grant is told, when `roundClosed`, that its update will
   * not be taken (a non-accepted ack, so it stops holding the frame).
   */
  #forgetTransfer(agentId: string, roundClosed = false): void {
    const p = this.#pending.get(agentId);
    this.#pending.delete(agentId);
    if (roundClosed && p !== undefined && this.#uploads.isUploading(agentId)) this.#withdrawn.set(agentId, p.assignment.roundId);
    const q = this.#uploads.dequeue(agentId);
    if (q !== undefined && p !== undefined && roundClosed && q.uses(UPLOAD_GRANT_FEATURE)) {
      q.send({ type: 'update-ack', roundId: p.assignment.roundId, accepted: false, code: 'STRATA_ERR_STALE_ROUND' });
    }
    this.#releaseUpload(agentId);
  }

  #releaseUpload(agentId: string): void {
    this.#uploads.release(agentId, (next) => {
      const p = this.#pending.get(next.agentId);
      const current = next.state !== 'closed' && p !== undefined && this.#sessions.get(next.agentId) === next;
      return current ? p.assignment.roundId : undefined;
    });
  }

  #newRound(id: number, aggregator: UpdateAggregator, contributors: Set<string>): OpenRound {
    const round: OpenRound = { id, startedAt: Date.now(), deadlineAt: 0, timer: undefined, aggregator, contributors };
    this.#armDeadline(round);
    return round;
  }

  #armDeadline(round: OpenRound): void {
    if (round.timer) clearTimeout(round.timer);
    round.deadlineAt = Date.now() + this.#o.roundDeadlineMs;
    round.timer = setTimeout(() => this.#onDeadline(round), this.#o.roundDeadlineMs);
  }

  #onDeadline(round: OpenRound): void {
    if (this.#round !== round || this.#state !== 'open') return;
    if (round.contributors.size >= this.#minNeeded()) {
      this.#close(round);
      return;
    }
    // Too few updates: keep what arrived, give up on the stragglers, top up, extend.
    this.#d.log.warn({ roundId: round.id, accepted: round.contributors.size, needed: this.#minNeeded() }, 'round deadline passed below the minimum completion; extending');
    if (this.#d.strategy.mode === 'sync') this.#assignments.clear();
    this.#armDeadline(round);
    this.#progress();
  }

  #minNeeded(): number {
    return Math.max(1, Math.ceil(this.#o.minCompletion * this.#o.perRound));
  }

  /** Ready agents with no assignment and no update in `round` yet (lazily: a connect burst asks on every connect). */
  *#idle(round: OpenRound | undefined): Generator<AgentSession> {
    for (const s of this.#sessions.values()) {
      if (s.state === 'ready' && !this.#assignments.has(s.agentId) && !round?.contributors.has(s.agentId)) yield s;
    }
  }

  /** Called after every event: open a round when enough agents wait, top up, close when done. */
  #progress(): void {
    if (this.#state === 'waiting' && !this.#draining) {
      let idle = 0;
      for (const _ of this.#idle(undefined)) if (++idle >= this.#o.minClients) break;
      if (idle < this.#o.minClients) return;
      const id = this.#nextRoundId++;
      this.#d.store.openRound(id, this.#d.model.version, Date.now());
      this.#round = this.#newRound(id, this.#d.strategy.createAggregator(this.#d.model.numParams), new Set());
      this.#state = 'open';
      this.#d.log.info({ roundId: id, modelVersion: this.#d.model.version, ready: this.#sessions.size }, 'round opened');
    }
    const round = this.#round;
    if (this.#state !== 'open' || round === undefined) return;
    if (round.contributors.size >= this.#o.perRound) {
      this.#close(round);
      return;
    }
    if (this.#draining) return;
    const sync = this.#d.strategy.mode === 'sync';
    const desired = sync ? Math.ceil(this.#o.perRound * this.#o.overCommit) : Number.POSITIVE_INFINITY;
    const need = desired - round.contributors.size - this.#assignments.size;
    if (need > 0) {
      const byId = new Map(Array.from(this.#idle(round), (s) => [s.agentId, s] as const));
      const records = [...byId.keys()].flatMap((id) => this.#d.registry.get(id) ?? []);
      const picked = selectClients(records, Math.min(need, records.length), this.#o.selection, this.#rng);
      for (const c of picked) this.#assign(byId.get(c.agentId)!, round);
      if (picked.length > 0) this.#d.store.bumpRound(round.id, 'selected', picked.length);
    }
  }

  #assign(s: AgentSession, round: OpenRound): void {
    const a: Assignment = { roundId: round.id, modelVersion: this.#d.model.version, assignedAt: Date.now() };
    this.#assignments.set(s.agentId, a);
    this.#sendAssignment(s, a);
  }

  #sendAssignment(s: AgentSession, a: Assignment): void {
    const model = this.#d.model;
    const deadlineAt = this.#round?.deadlineAt ?? Date.now() + this.#o.roundDeadlineMs;
    s.send({
      type: 'round-assignment', roundId: a.roundId, modelVersion: a.modelVersion,
      deadlineMs: Math.max(1, deadlineAt - Date.now()), deadlineAt, layoutHash: model.layoutHash, numParams: model.numParams, updateKind: 'delta',
      config: { ...this.#o.training, ...this.#d.strategy.configureRound(a.roundId), seed: (this.#o.seed * 1_000_003 + a.roundId) >>> 0 },
    });
    s.sendBinary(model.frame(a.roundId, encodeWeightFrame));
  }

  #close(round: OpenRound): void {
    if (this.#state !== 'open') return;
    this.#state = 'aggregating';
    if (round.timer) clearTimeout(round.timer);
    this.#closing = this.#closeRound(round).catch((err: unknown) => {
      this.#d.log.fatal({ err }, 'closing the round failed; stopping');
      this.#state = 'stopped';
      this.#d.onFinished?.();
    });
  }

  async #closeRound(round: OpenRound): Promise<void> {
    const started = performance.now();
    const { model, strategy, store } = this.#d;
    const aggregate = round.aggregator.result();
    const next = strategy.applyAggregate(model.weights.slice(), aggregate);
    const newVersion = model.version + 1;
    const applied = store.completeRound({
      roundId: round.id, newVersion, layoutHash: model.layoutHash, weights: next, strategyState: strategy.exportState(), closedAt: Date.now(),
    });
    model.advance(next, newVersion);
    this.#d.metrics.roundsCompleted++;
    this.#d.registry.roundDone(round.contributors);
    if (strategy.mode === 'sync') {
      // Stragglers' late results now meet STRATA_ERR_STALE_ROUND.
      this.#assignments.clear();
      for (const id of [...this.#pending.keys()]) this.#forgetTransfer(id, true);
    }
    this.#round = undefined;
    let evaluation: Evaluation | null = null;
    if (this.#d.evaluate) {
      evaluation = await this.#d.evaluate(next);
      store.setModelEvaluation(newVersion, evaluation.accuracy, evaluation.loss);
      this.#lastEval = evaluation;
    }
    const seconds = (Date.now() - round.startedAt) / 1000;
    this.#d.metrics.roundSeconds.push(seconds);
    const summary: RoundSummary = { roundId: round.id, modelVersion: newVersion, applied, seconds, accuracy: evaluation?.accuracy ?? null, loss: evaluation?.loss ?? null };
    this.#d.log.info({ ...summary, aggregateMs: Math.round(performance.now() - started) }, 'round completed');
    this.#d.onRoundCompleted?.(summary);
    if (newVersion >= this.#o.rounds) return this.#finish();
    if (this.#draining) {
      this.#state = 'draining';
      return;
    }
    this.#state = 'waiting';
    this.#progress();
  }

  #finish(): void {
    this.#state = 'finished';
    this.#d.onFinished?.();
  }

  /**
   * Stop assigning; give the open round up to `timeoutMs` to finish with the
   * agents already working on it. If it does not, it stays open in the store
   * (its accepted updates are persisted) and the next start resumes it.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const deadline = Date.now() + timeoutMs;
    while (this.#state === 'open' && this.#assignments.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const round = this.#round;
    if (this.#state === 'open' && round !== undefined && round.contributors.size >= this.#minNeeded()) this.#close(round);
    if (this.#closing) await this.#closing;
    if (this.#round?.timer) clearTimeout(this.#round.timer);
    if (this.#state !== 'finished') this.#state = 'stopped';
  }
}
