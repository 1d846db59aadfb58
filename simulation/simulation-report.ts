import type { BackendInfo } from '../ml/backend.js';
import type { EnforcerInfo } from './budget.js';
import type { SimulationConfig } from './simulation-config.js';
import type { PoolStats } from './worker-pool.js';

export type ClientRoundStatus = 'participant' | 'straggler' | 'dropout';

/** One selected client in one round. */
export interface ClientRoundEntry {
  clientId: number;
  profile: string;
  status: ClientRoundStatus;
  budget: number;
  samples: number;
  /** Virtual: compute + communication, device seconds (0 for a dropout). */
  deviceSeconds: number;
  computeSeconds: number;
  commSeconds: number;
  /** Measured on this host. */
  cpuSeconds: number;
  wallSeconds: number;
  share: number;
  joules: number;
  loss: number | null;
  /** `--cl`: the client's memory hierarchy after the round. */
  cl?: { emSize: number; storedSamples: number; swapsApplied: number; replaySamples: number };
}

export interface RoundReport {
  round: number;
  /** Global model's test accuracy after the round (all classes). */
  accuracy: number;
  loss: number;
  /** `--cl`: accuracy on the classes seen so far, and the task the round trained. */
  accuracySeen?: number;
  task?: number;
  /** Host wall seconds the round took, and since the run started. */
  wallSeconds: number;
  wallTime: number;
  /** Virtual (device) seconds the round took, and the run's virtual clock after it. */
  virtualSeconds: number;
  virtualTime: number;
  selected: number;
  participants: number[];
  stragglers: number[];
  dropouts: number[];
  deadlineHit: boolean;
  /** Modelled joules of every client that worked this round. */
  energyJoules: number;
  trainLoss: number | null;
  clients: ClientRoundEntry[];
}

export interface ClientTotals {
  clientId: number;
  profile: string;
  budget: number;
  samples: number;
  selected: number;
  participated: number;
  straggled: number;
  dropped: number;
  deviceSeconds: number;
  cpuSeconds: number;
  wallSeconds: number;
  /** Total CPU seconds / total wall seconds over its jobs: the share it really got. */
  measuredShare: number | null;
  energyJoules: number;
}

export interface ProfileSummary {
  profile: string;
  budget: number;
  clients: number;
  jobs: number;
  measuredShare: number | null;
  /** Virtual round times (device seconds) of its jobs. */
  roundSeconds: number[];
}

export interface SimulationReport {
  command: 'simulate';
  config: SimulationConfig;
  /** True when SIGINT/SIGTERM ended the run early (after draining the round in progress). */
  interrupted: boolean;
  finalAccuracy: number;
  finalLoss: number;
  backend: string;
  backendInfo: BackendInfo;
  /** Which budget enforcer ran, and how detection went. */
  enforcer: EnforcerInfo;
  /** Enforcers the jobs actually ran under (a slot can fall back). */
  jobEnforcers: Record<string, number>;
  wallSeconds: number;
  virtualSeconds: number;
  totalEnergyJoules: number;
  rounds: RoundReport[];
  clients: ClientTotals[];
  profiles: ProfileSummary[];
  scheduler: (PoolStats & { mode: 'scheduled'; cpuSecondsPerSample: number }) | { mode: 'naive'; processes: number; loadSeconds: number };
  /** Peak resident memory of the host plus every worker/client process, sampled every 250 ms. */
  memory: { peakRssBytes: number; peakHostRssBytes: number };
  cl?: { tasks: { task: number; classes: number[]; afterRound: number; accuracySeen: number; accuracy: number }[]; classOrder: number[] };
  host: { cpus: number; cpuModel: string; node: string };
  startedAt: string;
  outDir: string;
}
