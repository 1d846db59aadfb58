import type { AcceptedUpdate, RoundEngineObserver, RoundSummary } from '../coordinator/round-engine-types.js';
import type { ChannelObserver } from './virtual-channel.js';
import type { ClientRoundEntry, ClientTotals, MiroChoice, ProfileSummary, RoundReport, SimulationReport } from './simulation-report.js';

/** What the builder knows of each client up front. */
export interface ClientInfo {
  index: number;
  profile: string;
  budget: number;
  /** Samples the client holds. */
  samples: number;
  /** Device seconds its radio takes per round (download, upload, round trips), from its profile. */
  commSeconds: number;
}

interface RoundAcc {
  id: number;
  openedAt: number;
  openedWall: number;
  entries: Map<string, ClientRoundEntry>;
  summary?: RoundSummary;
  closedWall?: number;
  rejected: Record<string, number>;
}

/**
 * Turns the round engine's events (rounds, assignments, accepted, late,
 * refused and dropped updates) and the virtual channel's (each job's
 * device report and host measurements) into the simulation report's rounds,
 * clients, staleness, validation and Miro sections.
 */
export class SimulationReportBuilder {
  readonly #clients: ReadonlyMap<string, ClientInfo>;
  readonly #origin: number;
  readonly #t0: number;
  readonly #rounds = new Map<number, RoundAcc>();
  readonly #staleness = new Map<number, number>();
  readonly #rejected: Record<string, number> = {};
  readonly #miro: MiroChoice[] = [];
  readonly #jobEnforcers: Record<string, number> = {};
  readonly #evaluations = new Map<number, { accuracySeen?: number; task?: number }>();
  #clipped = 0;
  #onRound: ((r: RoundReport) => void) | undefined;

  constructor(clients: ReadonlyMap<string, ClientInfo>, origin: number, t0: number, onRound?: (r: RoundReport) => void) {
    this.#clients = clients;
    this.#origin = origin;
    this.#t0 = t0;
    this.#onRound = onRound;
  }

  /** Extra figures of a model version's evaluation (`--cl`: accuracy on the classes seen). */
  noteEvaluation(version: number, extra: { accuracySeen?: number; task?: number }): void {
    this.#evaluations.set(version, extra);
  }

  get engineObserver(): RoundEngineObserver {
    return {
      roundOpened: (e) => {
        this.#rounds.set(e.roundId, { id: e.roundId, openedAt: e.at, openedWall: performance.now(), entries: new Map(), rejected: {} });
      },
      assigned: (e) => {
        const info = this.#clients.get(e.clientId)!;
        this.#round(e.roundId).entries.set(e.clientId, {
          clientId: info.index, profile: info.profile, status: 'straggler', budget: info.budget, samples: 0, deviceSeconds: 0, computeSeconds: 0,
          commSeconds: 0, cpuSeconds: 0, wallSeconds: 0, share: 0, joules: 0, loss: null,
        });
      },
      accepted: (e: AcceptedUpdate) => {
        const entry = this.#entry(e.assignedRound, e.clientId);
        if (entry !== undefined) {
          entry.status = 'participant';
          entry.countedIn = e.roundId;
          entry.staleness = e.staleness;
          entry.clipScale = e.scale;
        }
        this.#staleness.set(e.staleness, (this.#staleness.get(e.staleness) ?? 0) + 1);
        if (e.scale < 1) this.#clipped++;
      },
      rejected: (e) => {
        this.#rejected[e.code] = (this.#rejected[e.code] ?? 0) + 1;
        if (e.roundId === null) return;
        const acc = this.#rounds.get(e.roundId);
        if (acc !== undefined) acc.rejected[e.code] = (acc.rejected[e.code] ?? 0) + 1;
        const entry = this.#entry(e.roundId, e.clientId);
        if (entry !== undefined) {
          entry.status = 'rejected';
          entry.code = e.code;
        }
      },
      roundCompleted: (s) => {
        const acc = this.#round(s.roundId);
        acc.summary = s;
        acc.closedWall = performance.now();
        this.#onRound?.(this.#roundReport(acc));
      },
    };
  }

  get channelObserver(): ChannelObserver {
    return {
      completed: ({ client, job, result }) => {
        const info = this.#clients.get(client.clientId)!;
        const entry = this.#entry(job.assignment.roundId, client.clientId);
        this.#jobEnforcers[result.enforcer] = (this.#jobEnforcers[result.enforcer] ?? 0) + 1;
        if (entry === undefined) return;
        const m = result.result.metrics;
        entry.samples = m.numSamples;
        entry.deviceSeconds = m.deviceSeconds;
        entry.commSeconds = Math.min(info.commSeconds, m.deviceSeconds);
        entry.computeSeconds = m.deviceSeconds - entry.commSeconds;
        entry.cpuSeconds = result.cpuSeconds;
        entry.wallSeconds = result.wallSeconds;
        entry.share = result.share;
        if (result.host !== undefined) entry.host = result.host;
        entry.joules = result.result.joules.total;
        entry.loss = Number.isFinite(m.loss) ? m.loss : null;
        if (result.memory !== undefined) entry.cl = result.memory;
        const device = result.result.device;
        if (device !== undefined) {
          entry.device = device;
          if (device.boundary !== undefined && device.config !== undefined) {
            this.#miro.push({
              clientId: info.index, profile: info.profile, round: job.assignment.roundId, task: device.boundary.task, chosen: device.boundary.chosen,
              config: device.config, candidates: device.boundary.candidates, skipped: device.boundary.skipped, profilingJoules: device.profilingJoules ?? 0,
            });
          }
        }
      },
      droppedOut: ({ client, roundId }) => {
        const entry = this.#entry(roundId, client.clientId);
        if (entry !== undefined) entry.status = 'dropout';
      },
    };
  }

  #round(id: number): RoundAcc {
    let acc = this.#rounds.get(id);
    if (acc === undefined) {
      acc = { id, openedAt: this.#origin, openedWall: performance.now(), entries: new Map(), rejected: {} };
      this.#rounds.set(id, acc);
    }
    return acc;
  }

  #entry(roundId: number, clientId: string): ClientRoundEntry | undefined {
    return this.#rounds.get(roundId)?.entries.get(clientId);
  }

  #roundReport(acc: RoundAcc): RoundReport {
    const s = acc.summary!;
    const entries = [...acc.entries.values()].sort((a, b) => a.clientId - b.clientId);
    const index = (id: string): number => this.#clients.get(id)!.index;
    const participants = s.contributors.map(index).sort((a, b) => a - b);
    const countedHere = new Set(s.contributors);
    let lossSum = 0;
    let lossN = 0;
    for (const r of this.#rounds.values()) {
      for (const [id, e] of r.entries) {
        if (e.countedIn === s.roundId && countedHere.has(id) && e.loss !== null) {
          lossSum += e.loss * e.samples;
          lossN += e.samples;
        }
      }
    }
    const extra = this.#evaluations.get(s.modelVersion) ?? {};
    return {
      round: s.roundId,
      accuracy: s.accuracy ?? 0,
      loss: s.loss ?? 0,
      ...(extra.accuracySeen !== undefined ? { accuracySeen: extra.accuracySeen, task: extra.task } : {}),
      wallSeconds: ((acc.closedWall ?? performance.now()) - acc.openedWall) / 1000,
      wallTime: ((acc.closedWall ?? performance.now()) - this.#t0) / 1000,
      virtualSeconds: s.seconds,
      virtualTime: (s.closedAt - this.#origin) / 1000,
      selected: entries.length,
      participants,
      stragglers: entries.filter((e) => e.status === 'straggler' || (e.status === 'participant' && e.countedIn !== s.roundId)).map((e) => e.clientId),
      dropouts: entries.filter((e) => e.status === 'dropout').map((e) => e.clientId),
      deadlineHit: s.closedBy === 'deadline',
      rejected: { ...acc.rejected },
      ...(s.secureAggregation !== undefined ? { secureAggregation: s.secureAggregation } : {}),
      ...(s.privacy !== undefined ? { privacy: s.privacy } : {}),
      energyJoules: entries.reduce((sum, e) => sum + e.joules, 0),
      trainLoss: lossN > 0 ? lossSum / lossN : null,
      clients: entries,
    };
  }

  /** The report's rounds (completed ones, in order), per-client totals, profiles and event summaries. */
  finish(): Pick<SimulationReport, 'rounds' | 'clients' | 'profiles' | 'staleness' | 'validation' | 'miro' | 'jobEnforcers' | 'totalEnergyJoules'> {
    const rounds = [...this.#rounds.values()].filter((r) => r.summary !== undefined).sort((a, b) => a.id - b.id).map((r) => this.#roundReport(r));
    const byIndex = [...this.#clients.entries()].sort((a, b) => a[1].index - b[1].index);
    const totals: ClientTotals[] = byIndex.map(([, c]) => ({
      clientId: c.index, profile: c.profile, budget: c.budget, samples: c.samples,
      selected: 0, participated: 0, straggled: 0, rejected: 0, dropped: 0, deviceSeconds: 0, cpuSeconds: 0, wallSeconds: 0, measuredShare: null, energyJoules: 0,
    }));
    // Every assignment once, in the round it was made.
    const all = [...this.#rounds.values()].flatMap((r) => [...r.entries.values()]);
    for (const e of all) {
      const t = totals[e.clientId]!;
      t.selected++;
      if (e.status === 'participant') t.participated++;
      else if (e.status === 'dropout') t.dropped++;
      else if (e.status === 'rejected') t.rejected++;
      else t.straggled++;
      t.deviceSeconds += e.deviceSeconds;
      t.cpuSeconds += e.cpuSeconds;
      t.wallSeconds += e.wallSeconds;
      t.energyJoules += e.joules;
    }
    for (const t of totals) t.measuredShare = t.wallSeconds > 0 ? t.cpuSeconds / t.wallSeconds : null;
    const profileNames = [...new Set(byIndex.map(([, c]) => c.profile))];
    const profiles: ProfileSummary[] = profileNames.map((name) => {
      const jobs = all.filter((e) => e.profile === name && e.status !== 'dropout' && e.wallSeconds > 0);
      const cpu = jobs.reduce((s, e) => s + e.cpuSeconds, 0);
      const wall = jobs.reduce((s, e) => s + e.wallSeconds, 0);
      return {
        profile: name, budget: byIndex.find(([, c]) => c.profile === name)![1].budget, clients: totals.filter((t) => t.profile === name).length,
        jobs: jobs.length, measuredShare: wall > 0 ? cpu / wall : null, roundSeconds: jobs.map((e) => e.deviceSeconds),
      };
    });
    const n = [...this.#staleness.values()].reduce((a, b) => a + b, 0);
    const staleness = {
      histogram: Object.fromEntries([...this.#staleness.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
      max: Math.max(0, ...this.#staleness.keys()),
      mean: n === 0 ? 0 : [...this.#staleness.entries()].reduce((s, [k, v]) => s + k * v, 0) / n,
    };
    const miro = this.#miro.length === 0 && !all.some((e) => e.device?.config !== undefined) ? undefined : {
      choices: this.#miro,
      byProfile: byProfileCounts(this.#miro),
      profilingJoules: all.reduce((s, e) => s + (e.device?.profilingJoules ?? 0), 0),
    };
    return {
      rounds, clients: totals, profiles, staleness,
      validation: { maxUpdateNorm: null, clipNorm: null, clipped: this.#clipped, rejected: { ...this.#rejected } },
      ...(miro === undefined ? {} : { miro }),
      jobEnforcers: { ...this.#jobEnforcers },
      totalEnergyJoules: all.reduce((s, e) => s + e.joules, 0),
    };
  }
}

function byProfileCounts(choices: readonly MiroChoice[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const c of choices) {
    const row = (out[c.profile] ??= {});
    row[c.chosen] = (row[c.chosen] ?? 0) + 1;
  }
  return out;
}
