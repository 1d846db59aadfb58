import type { MemoryConfig, MiroCandidateReport } from '../protocol/index.js';
import type { ClientRegistry } from './client-registry.js';
import type { AcceptedUpdate } from './round-engine-types.js';

/** What a client reported with its accepted updates, summed (the `/status` and report row of a client). */
export interface ClientActivityRow {
  clientId: string;
  profile: string;
  connected: boolean;
  /** `training`: holds an assignment or has an update on its way; `idle`: connected and free; `offline`. */
  state: 'training' | 'idle' | 'offline';
  lastSeen: number;
  roundsDone: number;
  accepted: number;
  rejected: number;
  /** Its rejections by error code (this run). */
  rejectedCodes: Record<string, number>;
  dropped: number;
  /** Device seconds and modelled joules of its accepted rounds, Miro's profiling among them. */
  deviceSeconds: number;
  joules: number;
  profilingJoules: number;
  /** The memory-hierarchy configuration of its last update (Miro's choice in force), if it reports one. */
  config: MemoryConfig | null;
  /** Its continual-learning task at its last update. */
  task: number | null;
}

/** One task boundary a client profiled (Miro), as its result reported it. */
export interface ClientBoundary {
  clientId: string;
  profile: string;
  roundId: number;
  task: number;
  chosen: string;
  profilingJoules: number;
  candidates: MiroCandidateReport[];
}

/**
 * Per-client activity the round engine saw: device time, joules and the
 * device's own report (the memory configuration it trains with, Miro's
 * choices at its task boundaries), for `/status` and the coordinator's report.
 */
export class ClientActivity {
  readonly #totals = new Map<string, { deviceSeconds: number; joules: number; profilingJoules: number; config: MemoryConfig | null; task: number | null }>();
  readonly #boundaries: ClientBoundary[] = [];
  readonly #rejections = new Map<string, Record<string, number>>();

  /** A rejected update or result: counted by its code (codes are a closed list, so this stays small). */
  rejected(clientId: string, code: string): void {
    const byCode = this.#rejections.get(clientId) ?? {};
    byCode[code] = (byCode[code] ?? 0) + 1;
    this.#rejections.set(clientId, byCode);
  }

  accepted(e: AcceptedUpdate): void {
    const t = this.#totals.get(e.clientId) ?? { deviceSeconds: 0, joules: 0, profilingJoules: 0, config: null, task: null };
    const r = e.result;
    t.deviceSeconds += r.metrics.deviceSeconds;
    t.joules += r.joules.total;
    t.profilingJoules += r.device?.profilingJoules ?? 0;
    t.config = r.device?.config ?? t.config;
    t.task = r.device?.task ?? t.task;
    this.#totals.set(e.clientId, t);
    const b = r.device?.boundary;
    if (b !== undefined) {
      this.#boundaries.push({
        clientId: e.clientId, profile: e.profile, roundId: e.assignedRound, task: b.task, chosen: b.chosen,
        profilingJoules: r.device?.profilingJoules ?? 0, candidates: b.candidates,
      });
    }
  }

  /** Every known client's row, in id order. */
  rows(registry: ClientRegistry, training: (clientId: string) => boolean = () => false): ClientActivityRow[] {
    return [...registry.all()].sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0)).map((c) => {
      const t = this.#totals.get(c.agentId);
      return {
        clientId: c.agentId, profile: c.profile, connected: c.connected, state: !c.connected ? 'offline' : training(c.agentId) ? 'training' : 'idle',
        lastSeen: c.lastSeen, roundsDone: c.roundsDone, accepted: c.accepted, rejected: c.rejected, rejectedCodes: { ...this.#rejections.get(c.agentId) }, dropped: c.dropped, deviceSeconds: t?.deviceSeconds ?? 0, joules: t?.joules ?? 0, profilingJoules: t?.profilingJoules ?? 0,
        config: t?.config ?? null, task: t?.task ?? null,
      };
    });
  }

  /** Miro's choices at every profiled boundary, in the order the updates were accepted. */
  get boundaries(): readonly ClientBoundary[] {
    return this.#boundaries;
  }
}
