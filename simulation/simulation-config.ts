import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { StrataError } from '../common/strata-error.js';
import { PARTITION_PATTERN, parsePartition } from '../ml/datasets/partition.js';
import { STRATEGY_NAMES } from '../coordinator/strategies/strategy.js';

export const BUDGET_REQUESTS = ['auto', 'cgroup', 'duty', 'off'] as const;
export type BudgetRequest = (typeof BUDGET_REQUESTS)[number];
export const SIM_MODES = ['scheduled', 'naive'] as const;
export type SimulationMode = (typeof SIM_MODES)[number];

/**
 * Everything a `strata simulate` run is configured by. The same keys are
 * accepted in `--config FILE` (camelCase) and are the report's `config`.
 */
const configSchema = z.strictObject({
  /** `mnist` | `synthetic` | `idx:DIR` (with `cl`, the split is implied). */
  dataset: z.string().min(1),
  model: z.enum(['mlp', 'cnn']),
  clients: z.int().min(1).max(100_000),
  perRound: z.int().min(1),
  rounds: z.int().min(1).max(100_000),
  /** `iid` or `dirichlet:ALPHA`. */
  partition: z.string().regex(PARTITION_PATTERN, 'expected iid, dirichlet:ALPHA (ALPHA > 0) or skew:D (D in [0, 1])'),
  strategy: z.enum(STRATEGY_NAMES),
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
  /** Selected clients = ceil(perRound x overcommit); the round ends at the perRound-th completion. */
  overcommit: z.number().min(1).max(10),
  /** Round deadline in virtual (device) seconds; 0 = none. */
  deadlineSeconds: z.number().min(0),
  /**
   * No effect: virtual time comes from counted work (FLOPs, bytes, round
   * trips) priced by each client's profile, whatever the host. Accepted so
   * config files that set it still load.
   */
  hostSpeedFactor: z.number().positive(),
  /** Test samples the global model is evaluated on after each round (0 = all). */
  evalSamples: z.int().min(0),
  /** With `cl`: CL method, episodic memory, replay and memory hierarchy. */
  clMethod: z.enum(['finetune', 'er', 'derpp']),
  memory: z.int().min(1),
  replay: z.int().min(0),
  swap: z.enum(['async', 'sync', 'off']),
  swapRatio: z.number().min(0).max(1),
  seed: z.int().min(0).max(0xffff_ffff),
});

export type SimulationConfig = z.infer<typeof configSchema>;
export const SIMULATION_CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof SimulationConfig)[];

export function simulationDefaults(): SimulationConfig {
  return {
    dataset: 'mnist', model: 'mlp', clients: 20, perRound: 5, rounds: 10, partition: 'iid', strategy: 'fedavg', profiles: 'mixed',
    budget: 'auto', workers: Math.max(1, os.availableParallelism()), slotsPerWorker: 8, mode: 'scheduled', cl: false, tasks: 5,
    epochs: 1, batch: 32, optimizer: 'adam', learningRate: 0.002, serverLearningRate: 1, fedproxMu: 0.01, overcommit: 1,
    deadlineSeconds: 0, hostSpeedFactor: 1, evalSamples: 0, clMethod: 'er', memory: 200, replay: 32, swap: 'async', swapRatio: 0.5, seed: 1,
  };
}

/**
 * Defaults, then the config file, then flags: validates the merged result
 * and names the offending key (`config key "rounds": ...`). `origin` says
 * where values came from (`--config FILE` or flags).
 */
export function compileSimulationConfig(layers: { file?: Record<string, unknown>; fileName?: string; flags?: Partial<SimulationConfig> }): SimulationConfig {
  const merged: Record<string, unknown> = { ...simulationDefaults() };
  if (layers.file !== undefined) {
    for (const [k, v] of Object.entries(layers.file)) {
      if (!(SIMULATION_CONFIG_KEYS as string[]).includes(k)) {
        throw new StrataError('STRATA_ERR_BAD_CONFIG', `${layers.fileName ?? 'config'}: unknown key "${k}" (known keys: ${SIMULATION_CONFIG_KEYS.join(', ')})`, {
          file: layers.fileName, key: k,
        });
      }
      merged[k] = v;
    }
  }
  for (const [k, v] of Object.entries(layers.flags ?? {})) if (v !== undefined) merged[k] = v;
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = issue.path.map(String).join('.') || '(root)';
    const fromFile = layers.file !== undefined && key in layers.file && !(key in (layers.flags ?? {}) && (layers.flags as Record<string, unknown>)[key] !== undefined);
    const where = fromFile ? `${layers.fileName ?? 'config'}: key "${key}"` : `option "${key}"`;
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `${where}: ${issue.message}`, { key, file: fromFile ? layers.fileName : undefined });
  }
  const c = r.data;
  parsePartition(c.partition);
  if (c.perRound > c.clients) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "perRound": ${c.perRound} per round but only ${c.clients} clients`, { key: 'perRound' });
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
