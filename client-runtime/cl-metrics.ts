/**
 * Continual-learning metrics from the accuracy matrix R, where R[i][j] is
 * the test accuracy on task j after training task i (definitions in
 * ../shared/design/papers.md).
 */
export interface ClMetrics {
  accuracyMatrix: number[][];
  /** A_i: accuracy on all classes seen so far, after each task. */
  accuracyAfterTask: number[];
  /** Mean over j of R[T-1][j]. */
  finalAverageAccuracy: number;
  /** Mean over i of A_i. */
  averageIncrementalAccuracy: number;
  /** Mean over j < T-1 of max_{l < T-1} R[l][j] - R[T-1][j]. */
  forgetting: number;
  /** Mean over j < T-1 of R[T-1][j] - R[j][j]. */
  backwardTransfer: number;
}

const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

export function clMetrics(accuracyMatrix: number[][], accuracyAfterTask: number[]): ClMetrics {
  const T = accuracyMatrix.length;
  const last = accuracyMatrix[T - 1] ?? [];
  const forgetting: number[] = [];
  const bwt: number[] = [];
  for (let j = 0; j < T - 1; j++) {
    let best = Number.NEGATIVE_INFINITY;
    for (let l = 0; l < T - 1; l++) best = Math.max(best, accuracyMatrix[l]![j]!);
    forgetting.push(best - last[j]!);
    bwt.push(last[j]! - accuracyMatrix[j]![j]!);
  }
  return {
    accuracyMatrix,
    accuracyAfterTask,
    finalAverageAccuracy: mean(last.slice(0, T)),
    averageIncrementalAccuracy: mean(accuracyAfterTask),
    forgetting: mean(forgetting),
    backwardTransfer: mean(bwt),
  };
}
