import type { Rng } from '../../ml/rng.js';
import type { SampleStore } from '../../storage-tier/sample-store.js';
import type { EpisodicMemory } from './episodic-memory.js';

/**
 * Fills a memory's free slots with stored samples, one at a time to the
 * class it holds fewest of (among classes the store has), so a grown EM
 * holds past classes evenly rather than tilting to the newest. Returns the
 * samples written.
 */
export function fillClassBalanced(memory: EpisodicMemory, store: SampleStore, rng: Rng): number {
  const free = memory.capacity - memory.size;
  if (free <= 0) return 0;
  const stored = [...store.countsByClass().entries()].filter(([, n]) => n > 0).map(([c]) => c);
  if (stored.length === 0) return 0;
  const counts = memory.countsByClass();
  const labels: number[] = [];
  for (let k = 0; k < free; k++) {
    let best = stored[0]!;
    for (const c of stored) if ((counts[c] ?? 0) < (counts[best] ?? 0)) best = c;
    labels.push(best);
    counts[best] = (counts[best] ?? 0) + 1;
  }
  let filled = 0;
  for (const s of store.fetchManyRandomOfClasses(labels, () => rng.next())) {
    if (s === null) continue;
    memory.observe(s.features, s.label, s.task, s.logits !== null && s.logits.length === memory.logitsSize ? s.logits : undefined);
    filled++;
  }
  return filled;
}
