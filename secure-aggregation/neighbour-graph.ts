import { Rng } from '../ml/rng.js';

/**
 * The SecAgg+ communication graph: a random k-regular graph (a Harary graph
 * over a seeded permutation: each party linked to the k/2 nearest on each
 * side of a ring), so each party agrees masks with and shares its seeds
 * among k neighbours instead of all n - 1 (Bell et al., CCS 2020). k is
 * even and below n; with k >= n - 1 the graph is complete.
 */
export class NeighbourGraph {
  readonly members: readonly string[];
  readonly degree: number;
  readonly #neighbours = new Map<string, readonly string[]>();

  constructor(members: readonly string[], k: number, seed: number) {
    const ids = [...members].sort();
    this.members = ids;
    const n = ids.length;
    const rng = new Rng(seed >>> 0);
    const order = [...ids];
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const complete = k >= n - 1;
    const half = complete ? 0 : Math.max(1, Math.floor(k / 2));
    this.degree = complete ? n - 1 : 2 * half;
    for (let i = 0; i < n; i++) {
      const id = order[i]!;
      const out: string[] = [];
      if (complete) {
        for (const other of ids) if (other !== id) out.push(other);
      } else {
        for (let d = 1; d <= half; d++) out.push(order[(i + d) % n]!, order[(i - d + n) % n]!);
      }
      this.#neighbours.set(id, [...new Set(out)].sort());
    }
  }

  neighbours(id: string): readonly string[] {
    return this.#neighbours.get(id) ?? [];
  }

  /** The 1-based x of `id` in Shamir shares (its rank among the members). */
  shareX(id: string): number {
    return this.members.indexOf(id) + 1;
  }
}

/** SecAgg+'s default degree: 2 ceil(log2 n), at least 2, complete below that. */
export function defaultNeighbours(n: number): number {
  return Math.max(2, 2 * Math.ceil(Math.log2(Math.max(2, n))));
}

/**
 * Shares needed to reconstruct a seed dealt among `degree` neighbours: half
 * of them (at least 2), so a seed survives half its neighbours dropping
 * out, and the coordinator needs half a party's neighbours to collude with
 * it to learn its seeds.
 */
export function shareThreshold(degree: number): number {
  return Math.min(degree, Math.max(2, Math.ceil(degree / 2)));
}
