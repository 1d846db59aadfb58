import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { compileMiroOptions, type MiroOptions } from '../client-runtime/miro/miro-options.js';
import { StrataError } from '../common/strata-error.js';
import { modelSpecName, parseModelSpec } from '../ml/models/model-spec.js';
import { PARTITION_PATTERN, parsePartition } from '../ml/datasets/partition.js';

export const BUDGET_REQUESTS = ['auto', 'cgroup', 'duty', 'off'] as const;
export type BudgetRequest = (typeof BUDGET_REQUESTS)[number];
export const SIM_MODES = ['scheduled', 'naive'] as const;
export type SimulationMode = (typeof SIM_MODES)[number];

/**
 * Everything a `strata simulate` run is configured by. The same keys are
 * accepted in `--config FILE` (camelCase) and are the report's `config`.
 * The round settings are the coordinator's (the simulation runs its round
 * engine), the device settings an agent's (every client runs the device
 * runtime an agent runs).
 */
const configSchema = z.strictObject({
  /** `mnist` | `synthetic` | `idx:DIR` (with `cl`, the split is implied). */
  dataset: z.string().min(1),
  /** `mlp` | `cnn` | a path to a tfjs Layers model.json (made absolute). */
  model: z.string().min(1),
  clients: z.int().min(1).max(100_000),
  perRound: z.int().min(1),
  rounds: z.int().min(1).max(100_000),
  /** `iid`, `dirichlet:ALPHA` or `skew:D` (ml/datasets/partition.ts; an agent's `--partition`). */
  partition: z.string().regex(PARTITION_PATTERN, 'expected iid, dirichlet:ALPHA (ALPHA > 0) or skew:D (D in [0, 1])'),
  /** The strategy by name, with the knobs below (the CLI builds it; `runSimulation` takes the strategy object). */
  strategy: z.string().min(1),
  /** `mixed` (every shipped edge profile, round-robin), a profile name, or a comma list of names / JSON files. */
  profiles: z.string().min(1),
  budget: z.enum(BUDGET_REQUESTS),
  /** Worker processes (scheduled mode); default one per core. */
  workers: z.int().min(1).max(256),
  /** Most clients one worker runs at once (their budgets also sum to at most one core). */
  slotsPerWorker: z.int().min(1).max(64),
  mode: z.enum(SIM_MODES),
  /** Federated continual learning: each client's data arrives as class-incremental tasks across rounds. */
  cl: z.boolean(),
  /** With `cl`: tasks in the split. */
  tasks: z.int().min(1).max(255),
  /** Local epochs per round. */
  epochs: z.int().min(1).max(1000),
  batch: z.int().min(1).max(100_000),
  optimizer: z.enum(['adam', 'sgd']),
  learningRate: z.number().positive().max(10),
  serverLearningRate: z.number().positive().max(100),
  fedproxMu: z.number().min(0),
  /** FedBuff: updates trained on a model more than this many versions old are rejected. */
  maxStaleness: z.int().min(0),
  /** Trimmed mean: the fraction cut from each end. */
  trimmedMeanBeta: z.number().min(0).max(0.49),
  /** Selected clients = ceil(perRound x overCommit); a round ends at the perRound-th update (the coordinator's `--over-commit`). */
  overCommit: z.number().min(1).max(10),
  /** Idle clients a round needs to open (0: perRound). */
  minClients: z.int().min(0),
  /** At a deadline, a round closes with at least ceil(minCompletion x perRound) updates; else it is extended. */
  minCompletion: z.number().gt(0).max(1),
  selection: z.enum(['random', 'profile-aware']),
  /** Round deadline in virtual (device) seconds; 0 = none. */
  deadlineSeconds: z.number().min(0),
  /** Reject updates whose L2 norm is above this (0 = no bound). */
  maxUpdateNorm: z.number().min(0),
  /** Scale updates down to this L2 norm before aggregating (0 = off). */
  clipNorm: z.number().min(0),
  /** Secure aggregation (SecAgg+): the engine only holds each round's sum (the coordinator's `--secure-aggregation`). */
  secureAggregation: z.boolean(),
  /** Secure aggregation: neighbours per client, even (0: the default, 2 ceil(log2 n)). */
  secaggNeighbours: z.int().min(0).refine((k) => k % 2 === 0, 'must be even'),
  /** Secure aggregation: quantization range of a weighted update's coordinates (0: the default). */
  secaggRange: z.number().min(0),
  /** Differential privacy: off | central | local (the coordinator's `--dp`). */
  dp: z.enum(['off', 'central', 'local']),
  dpNoiseMultiplier: z.number().min(0),
  /** DP clipping norm (required with dp central | local). */
  dpClip: z.number().min(0),
  /** DP budget: training stops before a round that would spend past it (0: no budget). */
  dpEpsilon: z.number().min(0),
  dpDelta: z.number().gt(0).lt(1),
  /** Test samples the global model is evaluated on after each round (0 = all). */
  evalSamples: z.int().min(0),
  /** The continual-learning method every client runs, by name: a built-in (`finetune` trains on its new samples only; `er`; `derpp`) or one of the client app's. */
  clMethod: z.string().min(1),
  /** Replayed memory samples per new sample in a batch (the coordinator's `--replay`). */
  replay: z.number().min(0).max(100),
  /** Episodic-memory slots per client, and its memory hierarchy (CarM). */
  memory: z.int().min(1),
  storage: z.union([z.enum(['all', 'none']), z.int().min(1)]),
  swap: z.enum(['async', 'sync', 'off']),
  swapRatio: z.number().min(0).max(1),
  policy: z.enum(['random', 'hybrid', 'dynamic']),
  /** New samples a client learns from per round (0: its whole local data every round; with `cl`, its task slices). */
  samplesPerRound: z.int().min(0),
  /** Miro's profiler in every client (with `cl`): memory and stream buffer chosen by accuracy per joule at each task boundary. */
  profiler: z.enum(['off', 'miro']),
  /** Miro's options (its flags, camelCase as in `strata cl`'s report: cutline, memories, streamBuffers, ...); checked by Miro. */
  miro: z.record(z.string(), z.unknown()),
  /** Clients drop out of assignments at their profiles' dropout rates. */
  dropouts: z.boolean(),
  seed: z.int().min(0).max(0xffff_ffff),
});

export type SimulationConfig = z.infer<typeof configSchema>;
export const SIMULATION_CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof SimulationConfig)[];
/** Keys accepted from older config files under another name. */
const RENAMED_KEYS: Readonly<Record<string, keyof SimulationConfig>> = { overcommit: 'overCommit' };
/** Keys older config files may set that no longer do anything (virtual time is counted work priced by the profiles, whatever the host). */
const IGNORED_KEYS: ReadonlySet<string> = new Set(['hostSpeedFactor']);

export function simulationDefaults(): SimulationConfig {
  return {
    dataset: 'mnist', model: 'mlp', clients: 20, perRound: 5, rounds: 10, partition: 'iid', strategy: 'fedavg', profiles: 'mixed',
    budget: 'auto', workers: Math.max(1, os.availableParallelism()), slotsPerWorker: 8, mode: 'scheduled', cl: false, tasks: 5,
    epochs: 1, batch: 32, optimizer: 'adam', learningRate: 0.002, serverLearningRate: 1, fedproxMu: 0.01, maxStaleness: 10, trimmedMeanBeta: 0.1,
    overCommit: 1, minClients: 0, minCompletion: 0.5, selection: 'random', deadlineSeconds: 0, maxUpdateNorm: 0, clipNorm: 0, evalSamples: 0,
    secureAggregation: false, secaggNeighbours: 0, secaggRange: 0, dp: 'off', dpNoiseMultiplier: 0, dpClip: 0, dpEpsilon: 0, dpDelta: 1e-5,
    clMethod: 'finetune', replay: 1, memory: 200, storage: 'all', swap: 'async', swapRatio: 0.5, policy: 'random', samplesPerRound: 0,
    profiler: 'off', miro: {}, dropouts: true, seed: 1,
  };
}

/** Settings for `runSimulation`: the defaults with `settings` over them, checked (STRATA_ERR_BAD_CONFIG names a bad key). */
export function simulationConfig(settings: Partial<SimulationConfig> = {}): SimulationConfig {
  return compileSimulationConfig({ flags: settings });
}

/**
 * Defaults, then the config file, then flags: validates the merged result
 * and names the offending key (`config key "rounds": ...`). `origin` says
 * where values came from (`--config FILE` or flags).
 */
export function compileSimulationConfig(layers: { file?: Record<string, unknown>; fileName?: string; flags?: Partial<SimulationConfig> }): SimulationConfig {
  const merged: Record<string, unknown> = { ...simulationDefaults() };
  const fromFile: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(layers.file ?? {})) if (!IGNORED_KEYS.has(k)) fromFile[RENAMED_KEYS[k] ?? k] = v;
  if (layers.file !== undefined) {
    for (const [k, v] of Object.entries(fromFile)) {
      if (!(SIMULATION_CONFIG_KEYS as string[]).includes(k)) {
        throw new StrataError('STRATA_ERR_BAD_CONFIG', `${layers.fileName ?? 'config'}: unknown key "${k}" (known keys: ${SIMULATION_CONFIG_KEYS.join(', ')})`, {
          file: layers.fileName, key: k,
        });
      }
      merged[k] = v;
    }
  }
  for (const [k, v] of Object.entries(layers.flags ?? {})) if (v !== undefined) merged[k] = v;
  // A federation's default method replays from the memory hierarchy (ER over CarM) when clients learn continually.
  const methodGiven = fromFile['clMethod'] !== undefined || layers.flags?.clMethod !== undefined;
  if (!methodGiven) merged['clMethod'] = merged['cl'] === true ? 'er' : 'finetune';
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = issue.path.map(String).join('.') || '(root)';
    const isFromFile = layers.file !== undefined && key in fromFile && !(key in (layers.flags ?? {}) && (layers.flags as Record<string, unknown>)[key] !== undefined);
    const where = isFromFile ? `${layers.fileName ?? 'config'}: key "${key}"` : `option "${key}"`;
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `${where}: ${issue.message}`, { key, file: isFromFile ? layers.fileName : undefined });
  }
  const c = r.data;
  parsePartition(c.partition);
  try {
    c.model = modelSpecName(parseModelSpec(c.model, { option: 'model' }));
  } catch (err) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', (err as Error).message, { key: 'model' });
  }
  if (c.perRound > c.clients) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "perRound": ${c.perRound} per round but only ${c.clients} clients`, { key: 'perRound' });
  }
  if (c.minClients > c.clients) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "minClients": ${c.minClients} needed to open a round but only ${c.clients} clients`, { key: 'minClients' });
  }
  if (c.profiler === 'miro' && !c.cl) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', 'option "profiler": Miro profiles at the task boundaries of a continual stream; add --cl', { key: 'profiler' });
  }
  try {
    compileMiroOptions(c.miro as MiroOptions);
  } catch (err) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "miro": ${(err as Error).message}`, { key: 'miro' });
  }
  if (c.profiler === 'miro' && c.clMethod === 'finetune') {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', 'option "profiler": Miro tunes the episodic memory; --method finetune has none (use er or derpp)', { key: 'profiler' });
  }
  return c;
}

/** Reads `--config FILE`: YAML (`.yaml`/`.yml`) or JSON (anything else). */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new StrataError('STRATA_ERR_BAD_FLAG', `--config: file not found: ${abs}`, { flag: '--config', file: abs });
  const text = readFileSync(abs, 'utf8');
  let raw: unknown;
  if (/\.ya?ml$/i.test(abs)) {
    try {
      raw = parseYaml(text);
    } catch (err) {
      throw new StrataError('STRATA_ERR_BAD_CONFIG', `${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`, { file });
    }
  } else {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new StrataError('STRATA_ERR_BAD_CONFIG', `${file}: not valid JSON (${(err as Error).message})`, { file });
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `${file}: the config must be an object of keys (${SIMULATION_CONFIG_KEYS.join(', ')})`, { file });
  }
  return raw as Record<string, unknown>;
}
