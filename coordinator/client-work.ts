import type { ResultMessage } from '../protocol/index.js';
import type { Assignment } from './round-engine-types.js';

/**
 * What each client is doing for the round engine: its unanswered
 * assignment, a result whose update frame is still to come, and an update
 * frame the engine no longer wants (its round closed first: dropped
 * without blame when it comes).
 *
 * A client with an unanswered assignment is busy, expired or not: an agent
 * still training ignores a new assignment, so handing it one would only
 * leave a second assignment nobody works on. Expiry only stops the engine
 * counting on the client for its round (it tops the round up instead); the
 * client is free again when it answers (a late result) or disconnects.
 */
export class ClientWork {
  readonly #assignments = new Map<string, Assignment>();
  readonly #pending = new Map<string, { result: ResultMessage; assignment: Assignment }>();
  readonly #discard = new Map<string, number>();
  /** Per round: its assignments and the earliest expiry among them (maybe stale-early after removals: then a scan). */
  readonly #rounds = new Map<number, { count: number; minExpiresAt: number }>();

  #set(clientId: string, a: Assignment): void {
    this.#delete(clientId);
    this.#assignments.set(clientId, a);
    const r = this.#rounds.get(a.roundId);
    if (r === undefined) this.#rounds.set(a.roundId, { count: 1, minExpiresAt: a.expiresAt });
    else {
      r.count++;
      r.minExpiresAt = Math.min(r.minExpiresAt, a.expiresAt);
    }
  }

  #delete(clientId: string): void {
    const a = this.#assignments.get(clientId);
    if (a === undefined) return;
    this.#assignments.delete(clientId);
    const r = this.#rounds.get(a.roundId)!;
    if (--r.count === 0) this.#rounds.delete(a.roundId);
  }

  assignment(clientId: string): Assignment | undefined {
    return this.#assignments.get(clientId);
  }

  assign(clientId: string, a: Assignment): void {
    this.#set(clientId, a);
    this.#discard.delete(clientId);
  }

  /** An unanswered assignment, or an update on its way. */
  busy(clientId: string): boolean {
    return this.#assignments.has(clientId) || this.#pending.has(clientId);
  }

  /** Assignments of round `roundId` the engine still counts on: not expired at `now`, or their update already on its way. */
  outstanding(roundId: number, now: number): number {
    const r = this.#rounds.get(roundId);
    if (r === undefined) return 0;
    // None can have expired yet: every one counts (called on every event: no scan of a thousand assignments each time).
    if (now < r.minExpiresAt) return r.count;
    let n = 0;
    for (const [id, a] of this.#assignments) if (a.roundId === roundId && (a.expiresAt > now || this.#pending.has(id))) n++;
    return n;
  }

  /** A result was taken: its update frame is awaited. */
  pend(clientId: string, result: ResultMessage, a: Assignment): void {
    this.#pending.set(clientId, { result, assignment: a });
  }

  isPending(clientId: string): boolean {
    return this.#pending.has(clientId);
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The awaited update's result and assignment, no longer awaited. */
  takePending(clientId: string): { result: ResultMessage; assignment: Assignment } | undefined {
    const p = this.#pending.get(clientId);
    this.#pending.delete(clientId);
    return p;
  }

  /** The client answered (or was refused): its assignment is done. */
  answered(clientId: string, roundId?: number): void {
    if (roundId === undefined || this.#assignments.get(clientId)?.roundId === roundId) this.#delete(clientId);
  }

  /** The client is gone or failed: drops whatever it held; returns its assignment, if any. */
  drop(clientId: string): Assignment | undefined {
    const a = this.#assignments.get(clientId);
    this.#delete(clientId);
    this.#pending.delete(clientId);
    this.#discard.delete(clientId);
    return a;
  }

  /** Its update frame for `roundId` is no longer wanted; one that comes is dropped without blame. */
  discard(clientId: string, roundId: number): void {
    this.#discard.set(clientId, roundId);
  }

  /** Whether a frame for `roundId` from the client is one to drop (and forget). */
  takeDiscarded(clientId: string, roundId: number | undefined): boolean {
    if (roundId === undefined || this.#discard.get(clientId) !== roundId) return false;
    this.#discard.delete(clientId);
    return true;
  }

  /** A synchronous round closed: results of it still to be uploaded are no longer wanted. Returns those clients. */
  withdrawRound(roundId: number): string[] {
    const out: string[] = [];
    for (const [id, p] of [...this.#pending]) {
      if (p.assignment.roundId !== roundId) continue;
      this.#pending.delete(id);
      this.#delete(id);
      this.#discard.set(id, roundId);
      out.push(id);
    }
    return out;
  }
}
