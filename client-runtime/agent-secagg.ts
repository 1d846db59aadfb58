import type { Logger } from 'pino';
import type { StrataError } from '../common/strata-error.js';
import type { RoundAssignmentMessage, SecAggAgentMessage, SecAggCoordinatorMessage, SecAggKeysMessage } from '../protocol/index.js';
import { SecAggClient, type MaskedUpdate } from '../secure-aggregation/secagg-client.js';

interface Session {
  client: SecAggClient;
  ready: Promise<boolean>;
  settle: (ok: boolean) => void;
}

/**
 * An agent's part in secure-aggregation rounds (`AgentConnection`'s): the
 * session of the round it was last assigned (one at a time), the answers to
 * the coordinator's setup, relay and unmask, and who waits for the shares
 * before masking its update. A new assignment ends the session before it.
 */
export class AgentSecAgg {
  readonly #agentId: string;
  readonly #makeClient: (agentId: string, roundId: number) => SecAggClient;
  readonly #log: Logger;
  #session: Session | undefined;

  constructor(agentId: string, log: Logger, makeClient?: (agentId: string, roundId: number) => SecAggClient) {
    this.#agentId = agentId;
    this.#log = log;
    this.#makeClient = makeClient ?? ((id, roundId) => new SecAggClient(id, roundId));
  }

  /** A new assignment: the session before it ends; a secure-aggregation round (when `enabled`) starts one, whose keys go to the coordinator at once. */
  begin(a: RoundAssignmentMessage, enabled: boolean): SecAggKeysMessage | undefined {
    this.#session?.settle(false);
    this.#session = undefined;
    if (a.secureAggregation === undefined || !enabled) return undefined;
    const client = this.#makeClient(this.#agentId, a.roundId);
    let settle!: (ok: boolean) => void;
    const ready = new Promise<boolean>((resolve) => { settle = resolve; });
    this.#session = { client, ready, settle };
    return client.keys();
  }

  /** The connection closed: a session lives on one connection, so whoever waits for its shares stops waiting. */
  connectionClosed(): void {
    this.#session?.settle(false);
  }

  /** The answer to a coordinator's secure-aggregation message (none for a relay, which completes the shares). */
  onMessage(m: SecAggCoordinatorMessage): SecAggAgentMessage | undefined {
    const s = this.#session;
    if (s === undefined || s.client.roundId !== m.roundId) {
      this.#log.debug({ roundId: m.roundId, type: m.type }, 'secure aggregation message for another round; ignored');
      return undefined;
    }
    try {
      if (m.type === 'secagg-setup') return s.client.setup(m);
      if (m.type === 'secagg-unmask') return s.client.unmask(m);
      s.client.relay(m);
      s.settle(true);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, code: (err as StrataError).code, roundId: m.roundId }, 'secure aggregation step failed');
    }
    return undefined;
  }

  /**
   * Waits (until the round's deadline) for the shares of the round's
   * session; a session replaced meanwhile (the round re-assigned on a new
   * connection) is waited for in its place.
   */
  async ready(a: RoundAssignmentMessage, stopped: () => boolean): Promise<boolean> {
    const deadline = Date.now() + Math.max(0, a.deadlineAt - Date.now());
    for (;;) {
      const s = this.#session;
      if (s === undefined || s.client.roundId !== a.roundId) return false;
      const timer = setTimeout(() => s.settle(false), Math.max(0, deadline - Date.now()));
      const ok = await s.ready;
      clearTimeout(timer);
      if (s === this.#session && ok) return true;
      if (s === this.#session || Date.now() >= deadline || stopped()) return false;
    }
  }

  /** The weighted update masked in round `roundId`'s session (undefined when that session is gone). */
  mask(roundId: number, weighted: Float32Array, weight: number): MaskedUpdate | undefined {
    const s = this.#session;
    return s === undefined || s.client.roundId !== roundId ? undefined : s.client.mask(weighted, weight);
  }
}
