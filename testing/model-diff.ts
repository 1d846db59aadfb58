import { CoordinatorStore } from '../storage-tier/coordinator-store.js';

/** The largest |difference| between the latest models of two coordinator stores (infinite when their lengths differ). */
export function finalModelDiff(storeA: string, storeB: string): number {
  const read = (f: string): Float32Array => {
    const s = CoordinatorStore.open(f);
    try {
      return s.latestModel()!.weights;
    } finally {
      s.close();
    }
  };
  const a = read(storeA);
  const b = read(storeB);
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
