/** Recording a profiling round: what the report and a federated caller see of one boundary. */
import { candidateKey } from './candidate-space.js';
import { utility } from './choice.js';
import type { RoundDecision } from './decide-round.js';
import type { BoundaryRecord } from './miro-report.js';
import type { NavigatorName } from './navigators.js';
import { stepFlops } from './next-task-energy.js';
import type { RoundPlan } from './plan.js';
import type { TrialsOutcome } from './trials.js';

export function boundaryRecord(plan: RoundPlan, outcome: TrialsOutcome, decision: RoundDecision, navigator: NavigatorName, reusedSamples: number): BoundaryRecord {
  const c = decision.chosen;
  const scores = outcome.scores;
  const sum = (f: (x: (typeof scores)[number]) => number): number => scores.reduce((s, x) => s + f(x), 0);
  const flopsPerStep = stepFlops(plan.present, plan.next);
  return {
    task: plan.index,
    navigator,
    candidates: decision.results.map((r, i) => ({
      key: r.candidate.key, memory: r.candidate.memory, streamBuffer: r.candidate.streamBuffer, swapRatio: r.candidate.swapRatio,
      accuracy: r.accuracy, joules: r.joules, utility: utility(r), trialJoules: r.trialJoules, trialSeconds: r.trialSeconds,
      trialFlops: scores[i]!.trialFlops, kept: decision.kept.has(r.candidate.key), chosen: r.candidate.key === c.key,
    })),
    chosen: { key: candidateKey(c), memory: c.memory, streamBuffer: c.streamBuffer, swapRatio: c.swapRatio },
    hostSeconds: sum((x) => x.hostSeconds),
    deviceSeconds: sum((x) => x.trialSeconds),
    joules: sum((x) => x.trialJoules),
    flops: sum((x) => x.trialFlops),
    secondsPerStep: flopsPerStep / (plan.next.profile.compute.gflops * 1e9),
    flopsPerStep,
    calibration: 'counted',
    validationSamples: plan.validationSamples,
    reusedSamples,
    margin: decision.margin,
    memoryJudged: plan.judged.memory,
    checkJoules: 0,
    skipped: [...decision.skipped],
  };
}
