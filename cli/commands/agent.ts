import os from 'node:os';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import { StrataError } from '../../common/strata-error.js';
import { DeviceAgent, type AgentReport } from '../../client-runtime/agent.js';
import { parseShardSpec, type ShardSpec } from '../../client-runtime/local-shard.js';
import type { StorageBudget } from '../../client-runtime/carm/memory-hierarchy.js';
import { Inbox } from '../../client-runtime/inbox.js';
import { loadDataset, parseDatasetSpec } from '../../ml/datasets/load-dataset.js';
import { modelInputShape, modelSpecName, parseModelSpec } from '../../ml/models.js';
import { parsePartition } from '../../ml/datasets/partition.js';
import { parseThreadsRequest } from '../../ml/threads.js';
import { loadProfile } from '../../profiles/profile-loader.js';
import { AGENT_ID_PATTERN, type ByeMessage } from '../../protocol/index.js';
import { backendFlag, badFlag, choiceFlag, intFlag, numberFlag } from '../flags.js';
import { addAgentPrivacyFlags, privacyFloorOf } from '../privacy-flags.js';
import { addMiroFlags, miroOptionsOf, type MiroFlags } from '../miro-flags.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';

interface AgentFlags extends MiroFlags {
  requireSecagg?: boolean; secureAggregation?: boolean; dp?: 'off' | 'central' | 'local'; dpNoiseMultiplier?: number; dpClip?: number;
  url: string; token?: string; tokenFile?: string; profile: string; dataset: string; model?: string; shard?: ShardSpec; partition?: string; skew?: number; db: string;
  agentId?: string; samplesPerRound: number | 'whole'; tasks: number; roundsPerTask: number; memory: number; storage: StorageBudget;
  swap: 'async' | 'sync' | 'off'; swapRatio: number; policy: 'random' | 'hybrid' | 'dynamic'; profiler: 'off' | 'miro';
  hostSpeedFactor?: number; reconnectMax: number; caFile?: string; seed: number; backend?: string; threads?: string; out?: string; json?: boolean;
  inbox?: string; exitWhenDone?: boolean;
}

function samplesFlag(value: string): number | 'whole' {
  if (value === 'whole') return 'whole';
  return intFlag('--samples-per-round')(value);
}

function storageFlag(value: string): StorageBudget {
  if (value === 'all' || value === 'none') return value;
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value);
  throw badFlag('--storage', value, 'all, none or a positive number of samples');
}

function urlFlag(value: string): string {
  if (!/^wss?:\/\/[^\s/]+/.test(value)) throw badFlag('--url', value, 'ws://HOST:PORT or wss://HOST:PORT');
  return value;
}

function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: cannot read ${file} (${(err as Error).message})`, { flag, file });
  }
}

export function agentCommand(getLogger: () => Logger): Command {
  const cmd = new Command('agent')
    .description('run an edge device agent: learn continually from local data, send only model updates to a coordinator')
    .requiredOption('--url <url>', 'coordinator ws://HOST:PORT or wss://HOST:PORT', urlFlag)
    .option('--token <token>', "this agent's token (see the coordinator's --tokens)")
    .option('--token-file <file>', 'read the token from a file instead (keeps it out of ps)')
    .option('--profile <name>', 'device profile name or JSON file (device seconds and joules)', 'reference-host')
    .option('--dataset <name>', 'mnist | synthetic | idx:DIR | csv:DIR | images:DIR (the device\'s own data); split-<one of those>: its classes arrive task by task', 'mnist')
    .option('--model <spec>', 'this device\'s copy of the model: mlp | cnn | PATH to the tfjs Layers model.json the coordinator runs (default: the model the coordinator names; its layout hash must match)')
    .option('--inbox <dir>', 'fed live: take in sample files dropped into DIR as they arrive (*.csv: a label column and one column per feature; <class id>/*.png|jpg: images); samples are like --dataset\'s (its shape, classes, scale), whose own samples are then not used')
    .option('--shard <I/N>', 'learn from shard I of N (seeded; see --partition); default: the whole data set', (v: string) => parseShardSpec(v))
    .option('--partition <p>', 'how shards are dealt: iid | dirichlet:ALPHA | skew:D, the same on every device and in strata simulate (default skew:0.8)', (v: string) => {
      parsePartition(v, '--partition');
      return v;
    })
    .option('--skew <f>', 'shorthand for --partition skew:F: fraction of its classes a shard owner gets (1 = only its own classes)', numberFlag('--skew', 0, 1))
    .requiredOption('--db <file>', 'SQLite sample store of this device (created if missing)')
    .option('--agent-id <id>', 'agent id (default <hostname>-<shard index>)')
    .option('--samples-per-round <n>', 'new samples learned per round, or whole (all of its data every round)', samplesFlag, 512 as number | 'whole')
    .option('--tasks <n>', 'split- data sets: tasks in the split (classes dealt by --seed)', intFlag('--tasks', 1, 255), 5)
    .option('--rounds-per-task <n>', 'split- data sets: rounds over which each task\'s samples arrive', intFlag('--rounds-per-task', 1), 2)
    .option('--memory <n>', 'episodic memory slots in RAM', intFlag('--memory'), 500)
    .option('--storage <budget>', 'all | none | N samples kept in SQLite', storageFlag, 'all' as StorageBudget)
    .option('--swap <mode>', 'async | sync | off', choiceFlag('--swap', ['async', 'sync', 'off'] as const), 'async')
    .option('--swap-ratio <r>', 'fraction of replayed EM samples swapped per step', numberFlag('--swap-ratio', 0, 1), 0.5)
    .option('--policy <name>', 'random | hybrid | dynamic', choiceFlag('--policy', ['random', 'hybrid', 'dynamic'] as const), 'random')
    .addOption(new Option('--host-speed-factor <x>', 'no effect (device time comes from counted work priced by the profile); accepted so old commands still run')
      .argParser(numberFlag('--host-speed-factor', 0, 1e6, true)).hideHelp())
    .option('--profiler <name>', 'off | miro: Miro profiles at each task boundary of the stream (new classes) and tunes the memory hierarchy', choiceFlag('--profiler', ['off', 'miro'] as const), 'off' as 'off' | 'miro')
    .option('--exit-when-done', 'exit (code 0) when the coordinator says bye at the end of the federation, instead of waiting to reconnect')
    .option('--reconnect-max <seconds>', 'cap of the reconnect backoff', numberFlag('--reconnect-max', 0, 3600, true), 30)
    .option('--ca-file <file>', 'extra CA certificate (PEM) for wss:// with a private certificate')
    .option('--seed <n>', 'seed of the shard deal (the same on every device) and local sampling', intFlag('--seed', 0), 1)
    .option('--backend <name>', 'auto | tfjs-node | wasm | cpu', backendFlag)
    .option('--threads <n>', 'training threads: auto | N (default: STRATA_THREADS or auto)', (v: string) => String(parseThreadsRequest(v, '--threads')))
    .option('--out <dir>', 'run directory for report.json (default runs/agent-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout');
  addAgentPrivacyFlags(cmd);
  return addMiroFlags(cmd)
    .action(async (flags: AgentFlags) => {
      await runAgent(flags, getLogger());
    });
}

export async function runAgent(f: AgentFlags, logger: Logger): Promise<void> {
  const spec = parseDatasetSpec(f.dataset);
  const model = f.model === undefined ? undefined : modelSpecName(parseModelSpec(f.model, '--model'));
  const token = f.token ?? (f.tokenFile === undefined ? undefined : readFlagFile('--token-file', f.tokenFile).trim());
  if (token === undefined || token === '') throw new StrataError('STRATA_ERR_BAD_FLAG', '--token: an agent needs --token or --token-file', { flag: '--token' });
  const agentId = f.agentId ?? `${os.hostname()}-${f.shard?.index ?? 0}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128);
  if (!AGENT_ID_PATTERN.test(agentId)) throw badFlag('--agent-id', agentId, 'letters, digits and . _ : - (1..128)');
  const profile = loadProfile(f.profile);
  if (f.hostSpeedFactor !== undefined) {
    logger.warn({ flag: '--host-speed-factor' }, '--host-speed-factor has no effect: device seconds and joules come from counted work (FLOPs, bytes, requests) priced by the device profile');
  }
  if (f.partition !== undefined && f.skew !== undefined) throw badFlag('--skew', String(f.skew), 'not both --skew and --partition');
  const partition = parsePartition(f.partition ?? `skew:${f.skew ?? 0.8}`, f.partition !== undefined ? '--partition' : '--skew');
  if (f.inbox !== undefined && spec.split) throw badFlag('--inbox', f.inbox, 'a live device finds its tasks in what arrives: --dataset without split-');
  if (f.inbox !== undefined && f.shard !== undefined) throw badFlag('--inbox', f.inbox, 'not both --inbox and --shard');
  const privacyFloor = privacyFloorOf(f);
  const data = await loadDataset(spec, { inputShape: model !== undefined ? modelInputShape(model, '--model') : undefined });
  const agent = new DeviceAgent({
    url: f.url, agentId, token, profile, data, ...(model !== undefined ? { model } : {}), classIncremental: spec.split, live: f.inbox !== undefined, db: f.db, partition, tasks: f.tasks, roundsPerTask: f.roundsPerTask,
    samplesPerRound: f.samplesPerRound, memory: f.memory, storage: f.storage, swap: f.swap, swapRatio: f.swapRatio, policy: f.policy,
    profiler: f.profiler, ...(f.profiler === 'miro' ? { miro: miroOptionsOf(f) } : {}), reconnectMaxMs: Math.round(f.reconnectMax * 1000), seed: f.seed, logger,
    ...(f.shard ? { shard: f.shard } : {}), ...(f.backend ? { backend: f.backend } : {}),
    ...(f.threads !== undefined ? { threads: parseThreadsRequest(f.threads, '--threads') } : {}),
    ...(f.caFile ? { ca: readFlagFile('--ca-file', f.caFile) } : {}),
    ...(privacyFloor !== undefined ? { privacyFloor } : {}), secureAggregation: f.secureAggregation !== false,
  });
  const inbox = f.inbox === undefined ? undefined : new Inbox({
    dir: f.inbox, shape: { inputShape: data.inputShape, featureType: data.train.features instanceof Uint8Array ? 'uint8' : 'float32', numClasses: data.numClasses },
    ingest: (samples, options) => agent.ingest(samples, options), logger: logger.child({ component: 'inbox' }),
  });
  const outDir = prepareRunDir('agent', f.out);
  await agent.start();
  inbox?.start();
  process.stdout.write(`agent ${agentId} connecting to ${f.url}${inbox ? ` (fed live from ${inbox.dir})` : ''}\n`);
  // Runs until SIGTERM/SIGINT (drain: finish nothing new, say bye) or until the coordinator refuses it for good.
  const ended = await new Promise<{ signal?: NodeJS.Signals; fatal?: StrataError; done?: ByeMessage }>((resolve) => {
    process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
    process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
    agent.connection!.once('fatal', (err: StrataError) => resolve({ fatal: err }));
    // The coordinator's final bye: the federation is complete.
    if (f.exitWhenDone === true) agent.connection!.on('bye', (m: ByeMessage) => { if (m.final === true) resolve({ done: m }); });
  });
  if (ended.done) logger.info({ reason: ended.done.reason ?? null, roundsCompleted: ended.done.roundsCompleted ?? null }, 'federation complete; exiting (--exit-when-done)');
  await inbox?.stop();
  const report: AgentReport & { command: 'agent'; outDir: string } = { command: 'agent', ...(await agent.stop()), outDir, ...(inbox ? { inbox: inbox.stats } : {}) };
  writeReport(outDir, report);
  if (ended.fatal) throw new StrataError(ended.fatal.code, `${ended.fatal.code}: ${ended.fatal.message}`, { ...ended.fatal.details });
  if (f.json === true) printJsonReport(report);
  else process.stdout.write(`agent ${agentId} stopped after ${report.rounds.length} rounds (${report.acks.accepted} accepted) | report ${outDir}/report.json\n`);
}
