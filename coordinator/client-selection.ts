import { Rng } from '../ml/rng.js';
import type { ClientLink } from './client-link.js';
import type { ClientRecord, ClientRegistry } from './client-registry.js';
import type { SelectionPolicy } from './coordinator-options.js';
import type { FederatedStrategy, SelectionCandidate } from './strategies/strategy.js';

/**
 * A round's pick among its idle clients: the strategy's `selectClients` when
 * it has one, else the coordinator's policy; candidates in id order and a
 * draw seeded by (seed, round, selection number), so a round's picks follow
 * from its seed and the events before it, whatever order clients connected
 * in. A strategy's picks that are not candidates, or repeat, are dropped.
 */
export function selectForRound(
  idle: readonly ClientLink[], registry: ClientRegistry, count: number, policy: SelectionPolicy, strategy: FederatedStrategy,
  at: { seed: number; roundId: number; modelVersion: number; selection: number },
): ClientLink[] {
  const sorted = [...idle].sort((x, y) => (x.clientId < y.clientId ? -1 : x.clientId > y.clientId ? 1 : 0));
  const byId = new Map(sorted.map((l) => [l.clientId, l] as const));
  const records = sorted.flatMap((l) => registry.get(l.clientId) ?? []);
  const rng = new Rng(selectionSeed(at.seed, at.roundId, at.selection));
  const k = Math.min(count, records.length);
  if (strategy.selectClients === undefined) return selectClients(records, k, policy, rng).map((c) => byId.get(c.agentId)!);
  const candidates: SelectionCandidate[] = records.map((r) => ({
    id: r.agentId, profile: r.profile, reliability: r.reliability, meanSeconds: r.meanSeconds, roundsDone: r.roundsDone,
  }));
  const picked = strategy.selectClients(candidates, k, {
    roundId: at.roundId, modelVersion: at.modelVersion, seed: roundSeed(at.seed, at.roundId), selection: at.selection, random: () => rng.next(),
  });
  const out = new Set<ClientLink>();
  for (const id of picked) {
    const link = byId.get(id);
    if (link !== undefined && out.size < k) out.add(link);
  }
  return [...out];
}

/** The training seed an assignment carries (a device mixes in its own id). */
export function roundSeed(seed: number, roundId: number): number {
  return (seed * 1_000_003 + roundId) >>> 0;
}

function selectionSeed(seed: number, roundId: number, selection: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(roundId, 0x85ebca6b) ^ Math.imul(selection + 1, 0xc2b2ae35)) >>> 0;
}

/**
 * Picks `count` of the candidates.
 * - `random`: uniform, without replacement (seeded).
 * - `profile-aware`: weighted sampling without replacement (Efraimidis-Spirakis),
 *   weight = reliability x speed, where speed compares the client's mean time
 *   to deliver (or, for a new client, its device profile's mean) with the
 *   median over known clients: reliable, fast devices are picked more often,
 *   slow or flaky ones still sometimes (so their data is not lost for good).
 */
export function selectClients(candidates: readonly ClientRecord[], count: number, policy: SelectionPolicy, rng: Rng): ClientRecord[] {
  if (count <= 0) return [];
  if (policy === 'random' || candidates.length <= count) {
    const pool = [...candidates];
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, count);
  }
  const byProfile = new Map<string, { sum: number; n: number }>();
  const times: number[] = [];
  for (const c of candidates) {
    if (c.meanSeconds === null) continue;
    times.push(c.meanSeconds);
    const p = byProfile.get(c.profile) ?? { sum: 0, n: 0 };
    p.sum += c.meanSeconds;
    p.n++;
    byProfile.set(c.profile, p);
  }
  times.sort((a, b) => a - b);
  const median = times.length > 0 ? times[times.length >> 1]! : 1;
  const keyed = candidates.map((c) => {
    const p = byProfile.get(c.profile);
    const t = c.meanSeconds ?? (p ? p.sum / p.n : median);
    const speed = median > 0 ? Math.min(4, Math.max(0.25, median / Math.max(t, 1e-6))) : 1;
    const w = Math.max(0.01, c.reliability) * speed;
    return { c, key: Math.log(Math.max(rng.next(), 1e-300)) / w };
  });
  keyed.sort((a, b) => b.key - a.key);
  return keyed.slice(0, count).map((k) => k.c);
}
