import type { PrivacySpent, SecAggSummary } from '../coordinator/round-engine-types.js';
import type { BackendInfo } from '../ml/backend.js';
import type { DeviceReport, MemoryConfig } from '../protocol/index.js';
import type { EnforcerInfo } from './budget.js';
import type { SimulationConfig } from './simulation-config.js';
import type { RedisDispatchStats } from './redis/redis-dispatcher.js';
import type { PoolStats } from './worker-pool.js';

/**
 * What became of one assignment: its update was taken (`participant`), came
 * after its round closed or never came (`straggler`), was refused by
 * validation (`rejected`), or the device dropped out (`dropout`).
 */
export type ClientRoundStatus = 'participant' | 'straggler' | 'rejected' | 'dropout';

/** One assignment (a selected client in one round). */
export interface ClientRoundEntry {
  clientId: number;
  profile: string;
  status: ClientRoundStatus;
  /** The round whose model its update went into (FedBuff: later than the round it was assigned in when stale). */
  countedIn?: number;
  /** Model versions between the one it trained from and the one it went into. */
  staleness?: number;
  /** Its clipping factor (1: not clipped). */
  clipScale?: number;
  /** The code it was refused with. */
  code?: string;
  /** The device's own report: the configuration it trained with, Miro's boundary and profiling joules. */
  device?: DeviceReport;
  budget: number;
  samples: number;
  /** Virtual: everything the device did for the round (download, training, storage, upload), device seconds (0 for a dropout). */
  deviceSeconds: number;
  computeSeconds: number;
  commSeconds: number;
  /** The worker host that ran it (over Redis). */
  host?: string;
  /** Measured on the host that ran it. */
  cpuSeconds: number;
  wallSeconds: number;
  share: number;
  joules: number;
  loss: number | null;
  /** `--cl`: the client's memory hierarchy after the round. */
  cl?: { emSize: number; storedSamples: number; swapsApplied: number; replaySamples: number };
}

/** Miro's choice at one task boundary of one client. */
export interface MiroChoice {
  clientId: number;
  profile: string;
  round: number;
  task: number;
  chosen: string;
  config: MemoryConfig;
  /** Every candidate it tried, with its held-out accuracy and estimated joules. */
  candidates: NonNullable<DeviceReport['boundary']>['candidates'];
  /** Candidates whose trial was moot (no accuracy it could reach would change the choice), not run. */
  skipped: number;
  profilingJoules: number;
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
  /** Updates refused by validation, by code. */
  rejected?: Record<string, number>;
  /** Secure aggregation: the session that produced the round's sum. */
  secureAggregation?: SecAggSummary;
  /** DP spent after the round: epsilon of the round and in total (RDP accountant). */
  privacy?: PrivacySpent;
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
  /** Assignments whose update validation refused. */
  rejected: number;
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
  /** Local worker processes (`scheduled`), a process per client (`naive`), or worker hosts over Redis (`redis`: per-host jobs and utilisation). */
  scheduler: (PoolStats & { mode: 'scheduled'; cpuSecondsPerSample: number }) | { mode: 'naive'; processes: number; loadSeconds: number } | (RedisDispatchStats & { mode: 'redis' });
  /** Peak resident memory of the host plus every worker/client process, sampled every 250 ms. */
  memory: { peakRssBytes: number; peakHostRssBytes: number };
  cl?: { tasks: { task: number; classes: number[]; afterRound: number; accuracySeen: number; accuracy: number }[]; classOrder: number[] };
  /** Update staleness (model versions between the one trained from and the one updated; > 0 only with FedBuff). */
  staleness: { histogram: Record<string, number>; max: number; mean: number };
  /** The strategy the round engine ran. */
  strategy: { name: string; mode: 'sync' | 'async'; settings: Record<string, unknown> };
  /** Update validation and clipping, as the coordinator's engine applied them. */
  validation: { maxUpdateNorm: number | null; clipNorm: number | null; clipped: number; rejected: Record<string, number> };
  /** Secure aggregation on or off, and the DP spent over the run (null without DP). */
  privacy: { secureAggregation: boolean; dp: PrivacySpent | null };
  /** `--profiler miro`: every client's choice at every task boundary it profiled, and the choices by device profile. */
  miro?: { choices: MiroChoice[]; byProfile: Record<string, Record<string, number>>; profilingJoules: number };
  /** Assignments a virtual client ignored because it was still training (an agent does the same); the engine never hands out one. */
  ignoredAssignments: number;
  /** The run's coordinator store (SQLite): every model version, the update log, the rounds. */
  storeFile: string;
  host: { cpus: number; cpuModel: string; node: string };
  startedAt: string;
  outDir: string;
}
