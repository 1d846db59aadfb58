import { UPLOAD_GRANT_FEATURE } from '../../protocol/index.js';
import type { AgentSession } from './agent-session.js';

/**
 * Bounds the update bytes in memory: at most `limit` update frames in
 * flight. An agent using upload grants holds its frame until granted; an
 * older agent is paused (its frame waits, partly read, in the socket) until
 * a slot frees.
 */
export class UploadGate {
  readonly #limit: number;
  /** Agents admitted to send their update frame now. */
  readonly #uploading = new Set<string>();
  /** Agents waiting for a slot, in arrival order (a Map keeps insertion order), with the round they upload for. */
  readonly #waiting = new Map<string, { session: AgentSession; roundId: number }>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The engine wants an agent's update frame: admit it now, or queue it. */
  request(s: AgentSession, roundId: number): void {
    if (this.#uploading.size < this.#limit) {
      this.#admit(s, roundId);
      return;
    }
    if (!s.uses(UPLOAD_GRANT_FEATURE)) s.pause();
    this.#waiting.set(s.agentId, { session: s, roundId });
  }

  /**
   * The engine no longer wants it. A queued agent using grants is told now
   * (it drops the frame it holds); a paused one is resumed and its frame,
   * like an admitted agent's, reaches the engine, which drops it.
   */
  withdraw(s: AgentSession, roundId: number): void {
    const q = this.#waiting.get(s.agentId);
    if (q === undefined || q.roundId !== roundId) return;
    this.#waiting.delete(s.agentId);
    if (s.uses(UPLOAD_GRANT_FEATURE)) s.send({ type: 'update-ack', roundId, accepted: false, code: 'STRATA_ERR_STALE_ROUND' });
    else s.resume();
  }

  /** An agent's frame was taken, or it went away: free its slot (or its place in the queue) and admit who waits. */
  release(s: AgentSession): void {
    const q = this.#waiting.get(s.agentId);
    if (q !== undefined && q.session === s) {
      this.#waiting.delete(s.agentId);
      s.resume();
    }
    if (!this.#uploading.delete(s.agentId)) return;
    for (const [id, next] of this.#waiting) {
      if (this.#uploading.size >= this.#limit) break;
      this.#waiting.delete(id);
      this.#admit(next.session, next.roundId);
    }
  }

  #admit(s: AgentSession, roundId: number): void {
    this.#uploading.add(s.agentId);
    if (s.uses(UPLOAD_GRANT_FEATURE)) s.send({ type: 'upload-grant', roundId });
    else s.resume();
  }
}
