import { UPLOAD_GRANT_FEATURE } from '../protocol/index.js';
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
  /** Agents waiting for a slot, in arrival order (a Map keeps insertion order). */
  readonly #waiting = new Map<string, AgentSession>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  isUploading(agentId: string): boolean {
    return this.#uploading.has(agentId);
  }

  /** An agent's result arrived: admit its upload now, or queue it. */
  request(s: AgentSession, roundId: number): void {
    if (this.#uploading.size < this.#limit) {
      this.#admit(s, roundId);
      return;
    }
    if (!s.uses(UPLOAD_GRANT_FEATURE)) s.pause();
    this.#waiting.set(s.agentId, s);
  }

  /** Takes an agent out of the queue (resuming it if paused). */
  dequeue(agentId: string): AgentSession | undefined {
    const q = this.#waiting.get(agentId);
    if (q === undefined) return undefined;
    this.#waiting.delete(agentId);
    q.resume();
    return q;
  }

  /**
   * Frees an agent's slot and admits waiting agents; `roundOf` says which
   * round a waiting agent uploads for, or undefined when it no longer
   * should (it is resumed and skipped).
   */
  release(agentId: string, roundOf: (s: AgentSession) => number | undefined): void {
    if (!this.#uploading.delete(agentId)) return;
    for (const [id, next] of this.#waiting) {
      if (this.#uploading.size >= this.#limit) break;
      this.#waiting.delete(id);
      const roundId = roundOf(next);
      if (roundId === undefined) next.resume();
      else this.#admit(next, roundId);
    }
  }

  #admit(s: AgentSession, roundId: number): void {
    this.#uploading.add(s.agentId);
    if (s.uses(UPLOAD_GRANT_FEATURE)) s.send({ type: 'upload-grant', roundId });
    else s.resume();
  }
}
