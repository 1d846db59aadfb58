import type { CompiledMiroOptions } from './miro-options.js';
import type { NavigatorName } from './navigators.js';

/** One candidate a profiling round scored, as the report shows it. */
export interface CandidateRecord {
  key: string;
  memory: number;
  streamBuffer: number;
  swapRatio: number;
  /** Held-out accuracy on the seen tasks after the trial. */
  accuracy: number;
  /** Estimated joules of the next task under this configuration (counted work priced by the profile, full scale). */
  joules: number;
  /** Accuracy per joule. */
  utility: number;
  /** What the trial cost (profiling): trial training + validation forward passes + store reads. */
  trialJoules: number;
  trialSeconds: number;
  /** Counted FLOPs of the trial (training and validation). */
  trialFlops: number;
  /** Above the accuracy cutline (moot candidates, see `skipped`, counted at accuracy 0: any score gives the same choice, not always the same cut). */
  kept: boolean;
  chosen: boolean;
}

/** A selected candidate whose trial was moot. */
export interface SkippedCandidate {
  key: string;
  memory: number;
  streamBuffer: number;
  swapRatio: number;
  /** Estimated joules of the next task under it (counted work priced by the profile, full scale). */
  joules: number;
  /** Training steps its trial would have run beyond the prefix already scored. */
  stepsSaved: number;
  /** The round chose it all the same (every accuracy it could score led to it: e.g. the only configuration left to pick). */
  chosen: boolean;
}

/** One profiled task boundary. */
export interface BoundaryRecord {
  /** The task the choice applies to (trained next). */
  task: number;
  navigator: NavigatorName;
  candidates: CandidateRecord[];
  chosen: { key: string; memory: number; streamBuffer: number; swapRatio: number };
  /** This boundary's profiling cost: host seconds (a diagnostic), device seconds, joules and counted FLOPs. */
  hostSeconds: number;
  deviceSeconds: number;
  joules: number;
  flops: number;
  /** Device seconds of one full training step (a batch and its replay at the present EM size): `flopsPerStep` over the profile's FLOP/s. */
  secondsPerStep: number;
  /** Counted FLOPs of that step. */
  flopsPerStep: number;
  /** How the full-scale estimates are made: `counted` (counted work priced by the profile; no measured time). */
  calibration: 'counted';
  validationSamples: number;
  /** Leading stream samples of the task the chosen candidate's trial trained; the main run continued from its weights (0: not reused). */
  reusedSamples: number;
  /** How far the chosen candidate's accuracy per joule is above the best other kept one's, relative to it (0 when no other kept candidate differs from it in accuracy or joules). */
  margin: number;
  /** Whether the trials could tell EM sizes apart (false before the first task: the EM is empty, and its size stays as it was). */
  memoryJudged: boolean;
  /** Of `joules`: deciding whether the round's last trial was moot. Always 0: the check is arithmetic on counted estimates, not device work. */
  checkJoules: number;
  /** Candidates the navigator selected whose trial was not run: no accuracy it could reach would have changed the choice (see `skipMootTrials`). */
  skipped: SkippedCandidate[];
}

/** The configuration of the memory hierarchy and the loop that Miro tunes. */
export interface MiroConfig {
  memory: number;
  streamBuffer: number;
  swapRatio: number;
}

export interface MiroReport {
  options: CompiledMiroOptions;
  spaceSize: number;
  boundaries: BoundaryRecord[];
  /** The configuration each task ran with (defaults before the first profiled boundary; the previous choice at a boundary not profiled). */
  configPerTask: (MiroConfig & { task: number; profiled: boolean })[];
}
