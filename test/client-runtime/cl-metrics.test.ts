import { describe, expect, it } from 'vitest';
import { clMetrics } from '../../client-runtime/cl-metrics.js';

describe('continual-learning metrics', () => {
  it('computes the standard definitions from R', () => {
    const R = [
      [0.9, 0.0, 0.0],
      [0.6, 0.8, 0.0],
      [0.5, 0.7, 0.95],
    ];
    const m = clMetrics(R, [0.9, 0.7, 0.72]);
    expect(m.finalAverageAccuracy).toBeCloseTo((0.5 + 0.7 + 0.95) / 3, 10);
    expect(m.averageIncrementalAccuracy).toBeCloseTo((0.9 + 0.7 + 0.72) / 3, 10);
    // forgetting: task 0 best 0.9 -> 0.5 (0.4), task 1 best 0.8 -> 0.7 (0.1)
    expect(m.forgetting).toBeCloseTo(0.25, 10);
    // BWT: (0.5 - 0.9 + 0.7 - 0.8) / 2
    expect(m.backwardTransfer).toBeCloseTo(-0.25, 10);
  });

  it('a single task has no forgetting', () => {
    const m = clMetrics([[0.8]], [0.8]);
    expect(m).toMatchObject({ finalAverageAccuracy: 0.8, forgetting: 0, backwardTransfer: 0 });
  });
});
