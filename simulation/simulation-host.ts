import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import { initBackend } from '../ml/backend.js';
import { BatchBuilder } from '../ml/batches.js';
import { seenTestIndices, splitClassIncremental, type ClassIncrementalScenario } from '../ml/datasets/class-incremental.js';
import { loadDataset, parseDatasetSpec } from '../ml/datasets/load-dataset.js';
import { createModel } from '../ml/models.js';
import { Rng } from '../ml/rng.js';
import { evaluateModel } from '../ml/trainer.js';
import { getFlatWeights, setFlatWeights } from '../ml/weights.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { listProfiles, loadProfile } from '../profiles/profile-loader.js';
import type { ClientRecord } from '../coordinator/client-registry.js';
import { selectClients } from '../coordinator/client-selection.js';
import { createStrategy } from '../coordinator/strategies/index.js';
import { detectEnforcer, removeCgroupTree, type EnforcerInfo } from './budget.js';
import { NaiveRunner } from './naive-runner.js';
import { parsePartition, partitionIndices } from '../ml/datasets/partition.js';
import { RssSampler } from './rss-sampler.js';
import type { ClientJob, ClientResult, ModelSpec } from './sim-messages.js';
import type { SimulationConfig } from './simulation-config.js';
import type { ClientRoundEntry, ClientTotals, ProfileSummary, RoundReport, SimulationReport } from './simulation-report.js';
import { clientRoundTime, closeRound } from './virtual-clock.js';
import { WorkerPool } from './worker-pool.js';

export interface SimulationHooks {
  onStart?: (info: { enforcer: EnforcerInfo; backend: string; clients: number }) => void;
  onRound?: (r: RoundReport, rounds: number) => void;
  /** Fault injection (tests): SIGKILL worker 0 once it is running a client in this round. */
  killWorkerInRound?: number;
  /** Drain: when aborted, the round in progress finishes and the run ends with a report of the rounds done. */
  signal?: AbortSignal;
}

/** The edge profiles a `mixed` fleet deals round-robin (the reference host is not an edge device). */
export function resolveProfiles(spec: string): DeviceProfile[] {
  if (spec === 'mixed') return listProfiles().filter((p) => p.name !== 'reference-host');
  return spec.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => loadProfile(s));
}

/** The client's shuffle seed for a round: the same in every mode, so naive and scheduled runs agree. */
function jobSeed(seed: number, round: number, client: number): number {
  return ((seed * 1_000_003) ^ (round * 7919) ^ (client * 104_729)) >>> 0;
}

/**
 * `strata simulate`: virtual clients on a pool of worker processes under
 * per-client budgets, with the coordinator's own client selection and
 * strategies (configure, aggregate, apply), a virtual clock, and a report.
 */
export async function runSimulation(config: SimulationConfig, outDir: string, logger: Logger, hooks: SimulationHooks = {}): Promise<SimulationReport> {
  const log = logger.child({ component: 'simulation' });
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const spec = parseDatasetSpec(config.dataset, 'dataset');
  if (spec.split && !config.cl) {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', `option "dataset": '${config.dataset}' is a continual-learning split; add --cl (with --dataset ${config.dataset.replace(/^split-/, '')})`, { key: 'dataset' });
  }
  const baseDataset = spec.split ? config.dataset.slice('split-'.length) : config.dataset;
  const profiles = resolveProfiles(config.profiles);
  if (profiles.length === 0) throw new StrataError('STRATA_ERR_BAD_CONFIG', 'option "profiles": no device profiles found', { key: 'profiles' });
  const backend = await initBackend();
  const ds = loadDataset(baseDataset);
  const scenario: ClassIncrementalScenario | undefined = config.cl ? splitClassIncremental(ds, { tasks: config.tasks, seed: config.seed }) : undefined;
  // Client stores from an earlier run in the same directory would replay its samples: every run starts empty.
  if (scenario !== undefined) rmSync(path.join(outDir, 'clients'), { recursive: true, force: true });
  const model = createModel({ kind: config.model, inputShape: ds.inputShape, numClasses: ds.numClasses, seed: config.seed });
  let global = getFlatWeights(model);
  const numParams = global.length;
  const batches = new BatchBuilder(ds.featureSize, ds.numClasses, ds.scale);
  const evalCount = config.evalSamples > 0 ? Math.min(config.evalSamples, ds.test.count) : ds.test.count;
  const evalIndices = Int32Array.from({ length: evalCount }, (_, i) => i);
  const partitions = partitionIndices(ds.train.labels, ds.train.count, config.clients, parsePartition(config.partition), config.seed);
  const clientProfile = (c: number): DeviceProfile => profiles[c % profiles.length]!;
  const strategy = createStrategy(config.strategy, { serverLearningRate: config.serverLearningRate, fedproxMu: config.fedproxMu });

  const enforcer = detectEnforcer(config.budget, `strata-sim-${process.pid}-${randomBytes(3).toString('hex')}`,
    config.mode === 'scheduled' ? config.workers * config.slotsPerWorker : 1);
  log.info({ enforcer: enforcer.kind, notes: enforcer.notes, backend: backend.name, mode: config.mode }, `budget enforcer: ${enforcer.kind}`);
  hooks.onStart?.({ enforcer, backend: backend.name, clients: config.clients });
  const modelSpec: ModelSpec = { dataset: baseDataset, model: config.model, seed: config.seed, numParams };
  const enforcerSpec = { kind: enforcer.kind, root: enforcer.root };
  let naiveChild: number | null = null;
  const pool = config.mode === 'scheduled'
    ? new WorkerPool({ workers: config.workers, slotsPerWorker: config.slotsPerWorker, spec: modelSpec, enforcer: enforcerSpec, logger: log, t0 })
    : undefined;
  const naive = config.mode === 'naive' ? new NaiveRunner(modelSpec, enforcerSpec, (pid) => { naiveChild = pid; }) : undefined;
  const rss = new RssSampler(() => [...(pool?.pids ?? []), ...(naiveChild !== null ? [naiveChild] : [])]);

  const records: ClientRecord[] = Array.from({ length: config.clients }, (_, c) => ({
    agentId: String(c), profile: clientProfile(c).name, firstSeen: 0, lastSeen: 0, roundsDone: 0, accepted: 0, rejected: 0, dropped: 0,
    reliability: 1, meanSeconds: null, connected: true,
  }));
  const selectRng = new Rng(config.seed * 7 + 1);
  const dropRng = new Rng(config.seed * 13 + 5);
  const rounds: RoundReport[] = [];
  const clTasks: NonNullable<SimulationReport['cl']>['tasks'] = [];
  const jobEnforcers: Record<string, number> = {};
  const roundsPerTask = scenario !== undefined ? Math.ceil(config.rounds / scenario.tasks.length) : config.rounds;
  const taskOfRound = (r: number): number => Math.min((scenario?.tasks.length ?? 1) - 1, Math.floor((r - 1) / roundsPerTask));
  /** `--cl`: what client c's stream delivers in round r: its samples of the task's classes, in equal parts over the task's rounds. */
  const streamSlice = (c: number, r: number): Int32Array => {
    const t = taskOfRound(r);
    const want = new Set(scenario!.tasks[t]!.classes);
    const ofTask = partitions[c]!.filter((i) => want.has(ds.train.labels[i]!));
    const firstRound = t * roundsPerTask + 1;
    const lastRound = t === scenario!.tasks.length - 1 ? config.rounds : Math.min(config.rounds, firstRound + roundsPerTask - 1);
    const n = lastRound - firstRound + 1;
    const k = r - firstRound;
    return ofTask.slice(Math.floor((k * ofTask.length) / n), Math.floor(((k + 1) * ofTask.length) / n));
  };
  /** `--cl`: the last round whose stream each client has taken in. */
  const streamedUpTo = new Map<number, number>();
  let virtualTime = 0;
  let jobId = 0;
  let last = { accuracy: 0, loss: 0 };

  try {
    await pool?.start();
    for (let round = 1; round <= config.rounds; round++) {
      if (hooks.signal?.aborted === true) {
        log.warn({ roundsDone: round - 1 }, 'interrupted: ending the run after the rounds done');
        break;
      }
      const roundStart = performance.now();
      const task = scenario !== undefined ? taskOfRound(round) : undefined;
      const want = Math.min(config.clients, Math.ceil(config.perRound * config.overcommit - 1e-9));
      const selected = selectClients(records, want, 'random', selectRng).map((r) => Number(r.agentId)).sort((a, b) => a - b);
      const dropouts: number[] = [];
      const jobs: ClientJob[] = [];
      const trainExtra = strategy.configureRound(round);
      for (const c of selected) {
        const p = clientProfile(c);
        if (dropRng.next() < p.availability.dropoutRate) {
          dropouts.push(c);
          continue;
        }
        let indices = partitions[c]!;
        const backlog: { task: number; indices: Int32Array }[] = [];
        if (scenario !== undefined) {
          indices = streamSlice(c, round);
          for (let past = (streamedUpTo.get(c) ?? 0) + 1; past < round; past++) {
            const b = streamSlice(c, past);
            if (b.length > 0) backlog.push({ task: taskOfRound(past), indices: b });
          }
          streamedUpTo.set(c, round);
        }
        if (indices.length === 0) continue;
        jobs.push({
          jobId: ++jobId, round, clientId: c, profile: p.name, indices, budget: p.compute.cpuShare, seed: jobSeed(config.seed, round, c),
          train: {
            epochs: config.epochs, batch: config.batch, optimizer: config.optimizer, learningRate: config.learningRate,
            ...(trainExtra.fedproxMu !== undefined ? { fedproxMu: trainExtra.fedproxMu } : {}),
          },
          ...(scenario !== undefined && task !== undefined ? {
            cl: {
              task, tasks: scenario.tasks.length, classes: scenario.tasks[task]!.classes, dir: path.join(outDir, 'clients', `c${c}`),
              method: config.clMethod, memory: config.memory, replay: config.replay, swap: config.swap, swapRatio: config.swapRatio, backlog,
            },
          } : {}),
        });
      }
      let killTimer: NodeJS.Timeout | undefined;
      if (pool !== undefined && hooks.killWorkerInRound === round) {
        killTimer = setInterval(() => {
          if ((pool.runningCounts()[0] ?? 0) > 0) {
            const pid = pool.killWorker(0);
            log.warn({ pid }, 'fault injection: killed worker 0');
            clearInterval(killTimer);
          }
        }, 10);
      }
      let results: ClientResult[];
      try {
        results = pool !== undefined ? await pool.runRound(round, global, jobs) : await naive!.runRound(global, jobs);
      } finally {
        clearInterval(killTimer);
      }
      results.sort((a, b) => a.clientId - b.clientId);

      const times = new Map(results.map((r) => [r.clientId, clientRoundTime(clientProfile(r.clientId), { flops: r.flops, hostSeconds: r.cpuSeconds }, numParams)]));
      const close = closeRound(results.map((r) => ({ clientId: r.clientId, seconds: times.get(r.clientId)!.seconds })), config.perRound, config.deadlineSeconds);
      const counted = new Set(close.participants);
      const aggregator = strategy.createAggregator(numParams);
      let lossSum = 0;
      let lossN = 0;
      for (const r of results) {
        jobEnforcers[r.enforcer] = (jobEnforcers[r.enforcer] ?? 0) + 1;
        if (!counted.has(r.clientId)) continue;
        const w = strategy.updateWeight(r.numSamples, 0);
        if (w === null) continue;
        aggregator.add(r.delta, w);
        if (Number.isFinite(r.loss)) { lossSum += r.loss * r.numSamples; lossN += r.numSamples; }
      }
      if (aggregator.count > 0) global = strategy.applyAggregate(global, aggregator.result());
      setFlatWeights(model, global);
      const ev = evaluateModel(model, ds.test, batches, { indices: evalIndices });
      last = { accuracy: ev.accuracy, loss: ev.loss };
      let accuracySeen: number | undefined;
      if (scenario !== undefined && task !== undefined) {
        accuracySeen = evaluateModel(model, ds.test, batches, { indices: seenTestIndices(scenario, task) }).accuracy;
        const lastOfTask = round === config.rounds || Math.floor(round / roundsPerTask) !== Math.floor((round - 1) / roundsPerTask);
        if (lastOfTask && clTasks.every((t) => t.task !== task)) {
          clTasks.push({ task, classes: scenario.tasks[task]!.classes, afterRound: round, accuracySeen, accuracy: ev.accuracy });
        }
      }
      virtualTime += close.seconds;
      const entries: ClientRoundEntry[] = [];
      const byClient = new Map(results.map((r) => [r.clientId, r]));
      for (const c of selected) {
        const p = clientProfile(c);
        const r = byClient.get(c);
        const t = times.get(c);
        if (r === undefined || t === undefined) {
          entries.push({ clientId: c, profile: p.name, status: 'dropout', budget: p.compute.cpuShare, samples: 0, deviceSeconds: 0, computeSeconds: 0, commSeconds: 0, cpuSeconds: 0, wallSeconds: 0, share: 0, joules: 0, loss: null });
          continue;
        }
        entries.push({
          clientId: c, profile: p.name, status: counted.has(c) ? 'participant' : 'straggler', budget: p.compute.cpuShare, samples: r.numSamples,
          deviceSeconds: t.seconds, computeSeconds: t.computeSeconds, commSeconds: t.commSeconds, cpuSeconds: r.cpuSeconds, wallSeconds: r.wallSeconds,
          share: r.share, joules: t.joules, loss: Number.isFinite(r.loss) ? r.loss : null,
          ...(r.cl !== undefined ? { cl: r.cl } : {}),
        });
      }
      const wallNow = (performance.now() - t0) / 1000;
      const rr: RoundReport = {
        round, accuracy: ev.accuracy, loss: ev.loss,
        ...(accuracySeen !== undefined ? { accuracySeen, task } : {}),
        wallSeconds: (performance.now() - roundStart) / 1000, wallTime: wallNow,
        virtualSeconds: close.seconds, virtualTime,
        selected: selected.length, participants: close.participants, stragglers: close.stragglers, dropouts: [...dropouts, ...selected.filter((c) => !byClient.has(c) && !dropouts.includes(c))],
        deadlineHit: close.deadlineHit,
        energyJoules: entries.reduce((s, e) => s + e.joules, 0),
        trainLoss: lossN > 0 ? lossSum / lossN : null,
        clients: entries,
      };
      rounds.push(rr);
      log.debug({ round, accuracy: ev.accuracy, participants: close.participants.length, virtualSeconds: close.seconds }, 'round done');
      hooks.onRound?.(rr, config.rounds);
    }
  } finally {
    await pool?.stop();
    if (enforcer.root !== null) removeCgroupTree(enforcer.root);
  }
  const memory = rss.stop();

  const totals: ClientTotals[] = Array.from({ length: config.clients }, (_, c) => ({
    clientId: c, profile: clientProfile(c).name, budget: clientProfile(c).compute.cpuShare, samples: partitions[c]!.length,
    selected: 0, participated: 0, straggled: 0, dropped: 0, deviceSeconds: 0, cpuSeconds: 0, wallSeconds: 0, measuredShare: null, energyJoules: 0,
  }));
  for (const r of rounds) {
    for (const e of r.clients) {
      const t = totals[e.clientId]!;
      t.selected++;
      if (e.status === 'participant') t.participated++;
      else if (e.status === 'straggler') t.straggled++;
      else t.dropped++;
      t.deviceSeconds += e.deviceSeconds;
      t.cpuSeconds += e.cpuSeconds;
      t.wallSeconds += e.wallSeconds;
      t.energyJoules += e.joules;
    }
  }
  for (const t of totals) t.measuredShare = t.wallSeconds > 0 ? t.cpuSeconds / t.wallSeconds : null;
  const profileSummaries: ProfileSummary[] = profiles.map((p) => {
    const jobs = rounds.flatMap((r) => r.clients.filter((e) => e.profile === p.name && e.status !== 'dropout'));
    const cpu = jobs.reduce((s, e) => s + e.cpuSeconds, 0);
    const wall = jobs.reduce((s, e) => s + e.wallSeconds, 0);
    return {
      profile: p.name, budget: p.compute.cpuShare, clients: totals.filter((t) => t.profile === p.name).length, jobs: jobs.length,
      measuredShare: wall > 0 ? cpu / wall : null, roundSeconds: jobs.map((e) => e.deviceSeconds),
    };
  });
  const cpus = os.cpus();
  return {
    command: 'simulate',
    config,
    interrupted: rounds.length < config.rounds,
    finalAccuracy: last.accuracy,
    finalLoss: last.loss,
    backend: backend.name,
    backendInfo: backend,
    enforcer,
    jobEnforcers,
    wallSeconds: (performance.now() - t0) / 1000,
    virtualSeconds: virtualTime,
    totalEnergyJoules: rounds.reduce((s, r) => s + r.energyJoules, 0),
    rounds,
    clients: totals,
    profiles: profileSummaries,
    scheduler: pool !== undefined
      ? { mode: 'scheduled', ...pool.stats(), cpuSecondsPerSample: pool.estimator.cpuSecondsPerSample }
      : { mode: 'naive', ...naive!.stats() },
    memory,
    ...(scenario !== undefined ? { cl: { tasks: clTasks, classOrder: scenario.classOrder } } : {}),
    host: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version },
    startedAt,
    outDir,
  };
}
