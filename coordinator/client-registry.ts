import type { CoordinatorStore } from '../storage-tier/coordinator-store.js';
import type { ClientRow } from '../storage-tier/coordinator-rows.js';

export interface ClientRecord extends ClientRow {
  connected: boolean;
}

/** Reliability is an exponential moving average of outcomes (1 = update accepted, 0 = rejected or dropped). */
const RELIABILITY_ALPHA = 0.2;

/**
 * Every agent ever seen: id, profile, last seen, rounds done, reliability,
 * mean time to deliver. Written through to the store on each change, loaded
 * back on restart.
 */
export class ClientRegistry {
  readonly #clients = new Map<string, ClientRecord>();
  readonly #store: CoordinatorStore;

  constructor(store: CoordinatorStore) {
    this.#store = store;
    for (const row of store.loadClients()) this.#clients.set(row.agentId, { ...row, connected: false });
  }

  get(agentId: string): ClientRecord | undefined {
    return this.#clients.get(agentId);
  }

  all(): IterableIterator<ClientRecord> {
    return this.#clients.values();
  }

  get size(): number {
    return this.#clients.size;
  }

  connected(agentId: string, profile: string, at: number): ClientRecord {
    const c = this.#clients.get(agentId) ?? {
      agentId, profile, firstSeen: at, lastSeen: at, roundsDone: 0, accepted: 0, rejected: 0, dropped: 0, reliability: 1, meanSeconds: null, connected: true,
    };
    c.profile = profile;
    c.lastSeen = at;
    c.connected = true;
    this.#clients.set(agentId, c);
    this.#store.saveClient(c);
    return c;
  }

  disconnected(agentId: string, at: number): void {
    const c = this.#clients.get(agentId);
    if (!c) return;
    c.connected = false;
    c.lastSeen = at;
    this.#store.saveClient(c);
  }

  /** Counts an accepted update; saves the row unless `save` is false (the caller then saves the returned row with the update). */
  accepted(agentId: string, seconds: number, at: number, save = true): ClientRecord | undefined {
    const c = this.#clients.get(agentId);
    if (!c) return undefined;
    c.accepted++;
    c.lastSeen = at;
    c.reliability = (1 - RELIABILITY_ALPHA) * c.reliability + RELIABILITY_ALPHA;
    c.meanSeconds = c.meanSeconds === null ? seconds : 0.8 * c.meanSeconds + 0.2 * seconds;
    if (save) this.#store.saveClient(c);
    return c;
  }

  rejected(agentId: string, at: number): void {
    this.#penalize(agentId, 'rejected', at);
  }

  dropped(agentId: string, at: number): void {
    this.#penalize(agentId, 'dropped', at);
  }

  /** Counts a round done for each contributor, saved in one transaction. */
  roundDone(agentIds: Iterable<string>): void {
    const rows: ClientRecord[] = [];
    for (const id of agentIds) {
      const c = this.#clients.get(id);
      if (!c) continue;
      c.roundsDone++;
      rows.push(c);
    }
    this.#store.saveClients(rows);
  }

  #penalize(agentId: string, field: 'rejected' | 'dropped', at: number): void {
    const c = this.#clients.get(agentId);
    if (!c) return;
    c[field]++;
    c.lastSeen = at;
    c.reliability = (1 - RELIABILITY_ALPHA) * c.reliability;
    this.#store.saveClient(c);
  }
}
