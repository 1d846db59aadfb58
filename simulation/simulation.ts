import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { BUILTIN_CL_METHODS, findClMethod } from '../client-runtime/cl-methods/index.js';
import { DeviceStream, type StreamSchedule } from '../client-runtime/device-stream.js';
import type { MiroOptions } from '../client-runtime/miro/miro-options.js';
import { StrataError } from '../common/strata-error.js';
import { ClientRegistry } from '../coordinator/client-registry.js';
import { CoordinatorMetrics } from '../coordinator/coordinator-metrics.js';
import { compileCoordinatorOptions } from '../coordinator/coordinator-options.js';
import { GlobalModel } from '../coordinator/global-model.js';
import { RoundEngine } from '../coordinator/round-engine.js';
import { ServerEvaluation } from '../coordinator/strategies/server-evaluation.js';
import type { FederatedStrategy } from '../coordinator/strategies/strategy.js';
import { initBackend } from '../ml/backend.js';
import { splitClassIncremental, type ClassIncrementalScenario } from '../ml/datasets/class-incremental.js';
import { parseDatasetSpec } from '../ml/datasets/load-dataset.js';
import { parsePartition, partitionIndices } from '../ml/datasets/partition.js';
import { getFlatWeights, layoutOf } from '../ml/weights.js';
import { trainingFlops, trainingWork } from '../ml/work-count.js';
import { DeviceClock } from '../profiles/device-clock.js';
import type { DeviceProfile } from '../profiles/device-profile.js';
import { listProfiles, loadProfile } from '../profiles/profile-loader.js';
import { computeLayoutHash, roundTraffic } from '../protocol/index.js';
import { CoordinatorStore } from '../storage-tier/coordinator-store.js';
import { JobResultStore } from '../storage-tier/job-result-store.js';
import { detectEnforcer, removeCgroupTree, type EnforcerInfo, type EnforcerKind } from './budget.js';
import { BUILTIN_CLIENT_APP, clientAppDataset, clientAppModel, clientAppUrl, loadClientApp } from './client-app.js';
import type { DeviceRuntimeSpec } from './client-job.js';
import { NaiveRunner } from './naive-runner.js';
import { RedisDispatcher, type RedisDispatchOptions } from './redis/redis-dispatcher.js';
import { SimulationReportBuilder, type ClientInfo } from './report-builder.js';
import { ModelEvaluator } from './evaluator.js';
import { RssSampler } from './rss-sampler.js';
import type { ClientJob, AppSpec } from './sim-messages.js';
import type { SimulationConfig } from './simulation-config.js';
import type { RoundReport, SimulationReport } from './simulation-report.js';
import { VirtualChannel, type JobSource, type VirtualClientSpec } from './virtual-channel.js';
import { VirtualClock } from './virtual-clock.js';
import { WorkerPool } from './worker-pool.js';

/** A simulation: its settings, the strategy its round engine runs, where it writes. */
export interface SimulationSetup {
  /** Settings (`simulationDefaults()`, `compileSimulationConfig`). Its strategy name and knobs are for the CLI: `strategy` is what runs. */
  config: SimulationConfig;
  /**
   * The federated strategy, as a coordinator would run it. Without its own
   * `evaluate`, the simulation scores each new model on the data set's test
   * split (in a thread of its own).
   */
  strategy: FederatedStrategy;
  /** The run directory (client stores, the coordinator's database). */
  outDir: string;
  /** Default: warnings and errors to stderr. */
  logger?: Logger;
  hooks?: SimulationHooks;
  /**
   * The client code every virtual client runs: a module path or `file:` URL
   * whose default export is a `ClientApp` (its model, data and CL methods).
   * Default: Strata's own (`BUILTIN_CLIENT_APP`: the `model` setting on the
   * `dataset` setting).
   */
  clientApp?: string | URL;
  /**
   * Run the clients on worker hosts (`strata worker`) over Redis instead of
   * local worker processes (`workers`, `slotsPerWorker` and `budget` are then
   * the hosts' own). The run directory then keeps a checkpoint of every
   * result: a run killed mid-way and started again on the same directory
   * with the same settings resumes (replays what was done, then goes on).
   */
  redis?: RedisDispatchOptions;
}

export interface SimulationHooks {
  onStart?: (info: { enforcer: EnforcerInfo; backend: string; clients: number }) => void;
  onRound?: (r: RoundReport, rounds: number) => void;
  /** Fault injection (tests): SIGKILL worker 0 once it is running a client in this round. */
  killWorkerInRound?: number;
  /** Drain: when aborted, the round in progress finishes and the run ends with a report of the rounds done. */
  signal?: AbortSignal;
}

/** The edge profiles a `mixed` fleet deals round-robin (the reference host is not an edge device). */
export function resolveProfiles(spec: string): { spec: string; profile: DeviceProfile }[] {
  if (spec === 'mixed') return listProfiles().filter((p) => p.name !== 'reference-host').map((p) => ({ spec: p.name, profile: p }));
  return spec.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => ({ spec: s, profile: loadProfile(s) }));
}

/** A round deadline that never comes (`deadlineSeconds: 0`): rounds close at their K-th update. */
const NO_DEADLINE_MS = 1e15;

/** The engine's id of virtual client `index` (an agent standing for it uses the same id). */
export function simulatedClientId(index: number): string {
  return `c${index}`;
}

/**
 * `strata simulate`: the coordinator's round engine, on a virtual clock,
 * over virtual clients that each run the device runtime an agent runs, on a
 * pool of worker processes under per-client budgets (FedHC). Selection,
 * strategies, validation, clipping and persistence are the daemon's own
 * code; a client's update reaches the engine when its device would deliver
 * it, so deadlines, over-commitment, stragglers, dropouts and FedBuff
 * staleness happen in virtual time.
 */
export async function runSimulation(setup: SimulationSetup): Promise<SimulationReport> {
  const { config, outDir } = setup;
  const logger = setup.logger ?? pino({ level: 'warn' });
  const hooks = setup.hooks ?? {};
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
  // The worker processes and the evaluator thread start while this process loads its own copy of the data and model.
  if (setup.redis !== undefined && config.mode !== 'scheduled') {
    throw new StrataError('STRATA_ERR_BAD_CONFIG', 'option "mode": worker hosts over Redis run the scheduled mode (drop --mode naive or --redis)', { key: 'mode' });
  }
  const enforcer = setup.redis !== undefined
    ? hostsEnforcer(config.budget === 'off' ? 'off' : 'duty', config)
    : detectEnforcer(config.budget, `strata-sim-${process.pid}-${randomBytes(3).toString('hex')}`, config.mode === 'scheduled' ? config.workers * config.slotsPerWorker : 1);
  const appSpec: AppSpec = { clientApp: clientAppUrl(setup.clientApp ?? BUILTIN_CLIENT_APP), dataset: baseDataset, model: config.model, seed: config.seed };
  const enforcerSpec = { kind: enforcer.kind, root: enforcer.root };
  let naiveChild: number | null = null;
  const pool = config.mode === 'scheduled' && setup.redis === undefined
    ? new WorkerPool({ workers: config.workers, slotsPerWorker: config.slotsPerWorker, spec: appSpec, enforcer: enforcerSpec, logger: log, t0 })
    : undefined;
  const naive = config.mode === 'naive' ? new NaiveRunner(appSpec, enforcerSpec, (pid) => { naiveChild = pid; }) : undefined;
  const poolReady = pool?.start();
  poolReady?.catch(() => undefined);
  const evaluatorReady = ModelEvaluator.start({ spec: appSpec, evalSamples: config.evalSamples });
  evaluatorReady.catch(() => undefined);
  // Everything from here on holds resources (cgroups, processes, threads, files): they are released however the run ends.
  const cleanup: (() => void | Promise<void>)[] = [];
  let evaluator: ModelEvaluator | undefined;
  let dispatcher: RedisDispatcher | undefined;
  let checkpoint: JobResultStore | undefined;
  let finished = false;
  let killTimer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    // Over Redis, the run directory's checkpoint lets a run killed mid-way resume: it is kept when it belongs to an unfinished
    // run with these settings (then so are the clients' stores: no recorded job runs again), else started afresh.
    mkdirSync(outDir, { recursive: true });
    checkpoint = setup.redis !== undefined ? JobResultStore.open(path.join(outDir, 'checkpoint.sqlite')) : undefined;
    if (checkpoint !== undefined) cleanup.push(() => checkpoint?.close());
    const fingerprint = JSON.stringify({ config: { ...config, workers: 0, slotsPerWorker: 0, budget: '' }, clientApp: appSpec.clientApp, strategy: setup.strategy.name, settings: setup.strategy.settings?.() ?? {} });
    const resuming = checkpoint !== undefined && checkpoint.getMeta('fingerprint') === fingerprint && checkpoint.getMeta('finished') !== 'true';
    if (checkpoint !== undefined && !resuming) {
      checkpoint.clear();
      checkpoint.setMeta('fingerprint', fingerprint);
      checkpoint.setMeta('runId', randomBytes(6).toString('hex'));
    }
    // Worker hosts load the run's data and model (on its announcement) while this process loads its own.
    if (setup.redis !== undefined) {
      dispatcher = new RedisDispatcher({ ...setup.redis, runId: checkpoint!.getMeta('runId')!, spec: appSpec, logger: log, t0, checkpoint: checkpoint! });
      if (resuming) log.warn({ results: dispatcher.recordedResults, runId: dispatcher.runId }, 'resuming the run in this directory: replaying its recorded client results, then going on');
      await dispatcher.start();
    }
    // The host only builds the model (the evaluator thread scores it); the clients' threads have the cores.
    const backend = await initBackend({ threads: 1 });
    const app = await loadClientApp(appSpec.clientApp);
    const ds = await clientAppDataset(app, appSpec);
    const scenario: ClassIncrementalScenario | undefined = config.cl ? splitClassIncremental(ds, { tasks: config.tasks, seed: config.seed }) : undefined;
    // A run directory starts empty (an earlier run's client stores would replay its samples, its coordinator store resume its
    // rounds), but for a resumed run's client stores; its coordinator store is rebuilt by replaying the recorded results.
    for (const f of [...(resuming ? [] : ['clients']), 'coordinator.sqlite', 'coordinator.sqlite-wal', 'coordinator.sqlite-shm']) rmSync(path.join(outDir, f), { recursive: true, force: true });

    const model = await clientAppModel(app, { inputShape: ds.inputShape, numClasses: ds.numClasses }, appSpec, true);
    const initial = getFlatWeights(model);
    const trainingCost = trainingWork(model, config.optimizer);
    const layoutHash = computeLayoutHash(layoutOf(model).entries.map((e) => ({ name: e.name, shape: e.shape })));
    const numParams = initial.length;

    const partitions = partitionIndices(ds.train.labels, ds.train.count, config.clients, parsePartition(config.partition), config.seed);
    const roundsPerTask = scenario !== undefined ? Math.ceil(config.rounds / scenario.tasks.length) : 1;
    const schedule: StreamSchedule = scenario !== undefined
      ? { kind: 'tasks', tasks: scenario.tasks.map((t) => t.classes), roundsPerTask }
      : config.samplesPerRound > 0 ? { kind: 'chunks', samplesPerRound: config.samplesPerRound } : { kind: 'whole' };
    const profileOf = (c: number): { spec: string; profile: DeviceProfile } => profiles[c % profiles.length]!;
    const traffic = roundTraffic(numParams);
    const clients = new Map<string, ClientInfo>();
    const specs: VirtualClientSpec[] = [];
    const streams: DeviceStream[] = [];
    for (let c = 0; c < config.clients; c++) {
      const p = profileOf(c).profile;
      const id = simulatedClientId(c);
      const comm = new DeviceClock(p).network({ ...traffic });
      clients.set(id, { index: c, profile: p.name, budget: p.compute.cpuShare, samples: partitions[c]!.length, commSeconds: comm });
      specs.push({ clientId: id, index: c, profile: p.name, dropoutRate: p.availability.dropoutRate });
      streams.push(new DeviceStream(ds.train, partitions[c]!, schedule));
    }
    // The method every client runs, from the client app's factories (as each client makes it): does it keep a memory?
    const usesMemory = findClMethod(app.methods ?? BUILTIN_CL_METHODS, config.clMethod).create({ replay: Math.round(config.replay * config.batch), batchSize: config.batch }).usesMemory;
    // A client that fine-tunes on its whole data every round has nothing to carry between rounds (no memory, no stream
    // position, no plugin state): its rounds are the same computation with a saved state or without, so it keeps none.
    const keepsState = usesMemory || schedule.kind !== 'whole' || config.profiler !== 'off';
    const deviceSpec = (c: number): DeviceRuntimeSpec => ({
      indices: partitions[c]!, schedule, dir: keepsState ? path.join(outDir, 'clients', simulatedClientId(c)) : '',
      memory: { slots: config.memory, storage: config.storage, swap: config.swap, swapRatio: config.swapRatio, policy: config.policy },
      profiler: config.profiler, miro: config.miro as MiroOptions,
    });

    const options = compileCoordinatorOptions({
      perRound: config.perRound, minClients: config.minClients > 0 ? config.minClients : config.perRound, overCommit: config.overCommit,
      roundDeadlineMs: config.deadlineSeconds > 0 ? Math.round(config.deadlineSeconds * 1000) : NO_DEADLINE_MS, minCompletion: config.minCompletion,
      selection: config.selection, rounds: config.rounds, seed: config.seed, ...(config.maxUpdateNorm > 0 ? { maxUpdateNorm: config.maxUpdateNorm } : {}),
      ...(config.secureAggregation ? {
        secureAggregation: { ...(config.secaggNeighbours > 0 ? { neighbours: config.secaggNeighbours } : {}), ...(config.secaggRange > 0 ? { range: config.secaggRange } : {}) },
      } : {}),
      training: {
        model: config.model, epochs: config.epochs, batchSize: config.batch, learningRate: config.learningRate, optimizer: config.optimizer,
        method: config.clMethod, replay: usesMemory ? config.replay : 0,
      },
    });
    const clock = new VirtualClock(Date.now());
    const storeFile = path.join(outDir, 'coordinator.sqlite');
    const store = CoordinatorStore.open(storeFile);
    cleanup.push(() => store.close());
    store.saveInitialModel(initial, layoutHash, clock.now());
    const report = new SimulationReportBuilder(clients, clock.origin, t0, (r) => hooks.onRound?.(r, config.rounds));
    let version = 0;
    const evaluate = async (weights: Float32Array): Promise<{ accuracy: number; loss: number }> => {
      // The v-th model closes the v-th round: with --cl, its task is that round's, and the classes seen are its tasks' so far.
      const v = ++version;
      const task = scenario !== undefined ? streams[0]!.taskOfRound(v) : undefined;
      const seen = scenario !== undefined ? scenario.tasks.slice(0, task! + 1).flatMap((t) => t.classes) : null;
      const score = await evaluator!.score(weights, seen);
      if (score.accuracySeen !== undefined) report.noteEvaluation(v, { accuracySeen: score.accuracySeen, task: task! });
      return { accuracy: score.accuracy, loss: score.loss };
    };
    const strategy = setup.strategy.evaluate !== undefined ? setup.strategy : new ServerEvaluation(setup.strategy, evaluate);
    const engine = new RoundEngine({
      options, store, registry: new ClientRegistry(store), strategy, metrics: new CoordinatorMetrics(),
      model: new GlobalModel(initial, 0, layoutHash), log: log.child({ component: 'round-engine' }), clock,
      observer: report.engineObserver,
    });

    log.info({ enforcer: enforcer.kind, notes: enforcer.notes, backend: backend.name, mode: config.mode }, `budget enforcer: ${enforcer.kind}`);
    hooks.onStart?.({ enforcer, backend: backend.name, clients: config.clients });
    const rss = new RssSampler(() => [...(pool?.pids ?? []), ...(naiveChild !== null ? [naiveChild] : [])]);
    cleanup.push(() => { rss.stop(); });
    let jobId = 0;
    const source: JobSource = {
      job: (client, assignment) => {
        const c = client.index;
        const samples = streams[c]!.trainSamples(assignment.roundId);
        const p = profileOf(c);
        const job: ClientJob = {
          jobId: ++jobId, clientId: client.clientId, clientIndex: c, profile: p.spec, budget: p.profile.compute.cpuShare,
          work: samples * config.epochs, assignment, device: deviceSpec(c),
        };
        // Nothing it does can arrive before its radio has moved the model both ways and it has trained what it must: every
        // sample it trains at least once (Miro may shrink its stream buffer, so with Miro only the radio counts).
        const floor = config.profiler === 'off' ? trainingFlops(trainingCost, samples * config.epochs, 0) / (p.profile.compute.gflops * 1e9) : 0;
        return { job, minSeconds: clients.get(client.clientId)!.commSeconds + floor };
      },
      run: (job, weights) => (dispatcher !== undefined ? dispatcher.run(job, weights) : pool !== undefined ? pool.run(job, weights) : naive!.run(job, weights)),
    };
    const channel = new VirtualChannel({ clock, source, logger: log, seed: config.seed, dropouts: config.dropouts, observer: report.channelObserver });

    let interrupted = false;
    let draining: Promise<void> | undefined;
    let virtualSeconds = 0;
    const abort = (): void => {
      interrupted = true;
      log.warn('interrupted: finishing the round in progress, then ending the run');
      draining = engine.drain(Number.POSITIVE_INFINITY);
    };
    onAbort = abort;
    [evaluator] = await Promise.all([evaluatorReady, poolReady]);
    if (pool !== undefined && hooks.killWorkerInRound !== undefined) {
      const round = hooks.killWorkerInRound;
      killTimer = setInterval(() => {
        if ((engine.roundId ?? 0) >= round && (pool.runningCounts()[0] ?? 0) > 0) {
          const pid = pool.killWorker(0);
          log.warn({ pid }, 'fault injection: killed worker 0');
          clearInterval(killTimer);
        }
      }, 5);
    }
    if (hooks.signal?.aborted === true) abort();
    hooks.signal?.addEventListener('abort', abort, { once: true });
    channel.connectAll(engine, specs);
    engine.start(null);
    // The run ends when its last round closes (stragglers still training are not waited for) or a drain has stopped it.
    await channel.run(() => engine.done || (interrupted && engine.state === 'draining'));
    virtualSeconds = clock.elapsedSeconds;
    await engine.settled();
    await draining;
    const memory = rss.stop();
    const built = report.finish();
    finished = built.rounds.length >= config.rounds;
    if (finished) checkpoint?.setMeta('finished', 'true');
    const last = built.rounds.at(-1);
    const cpus = os.cpus();
    return {
      command: 'simulate',
      config,
      interrupted: built.rounds.length < config.rounds,
      finalAccuracy: last?.accuracy ?? 0,
      finalLoss: last?.loss ?? 0,
      backend: backend.name,
      backendInfo: backend,
      enforcer: dispatcher !== undefined ? hostsEnforcer(dominant(built.jobEnforcers) ?? enforcer.kind, config) : enforcer,
      jobEnforcers: built.jobEnforcers,
      wallSeconds: (performance.now() - t0) / 1000,
      virtualSeconds,
      totalEnergyJoules: built.totalEnergyJoules,
      rounds: built.rounds,
      clients: built.clients,
      profiles: built.profiles,
      scheduler: dispatcher !== undefined
        ? { mode: 'redis', ...dispatcher.stats() }
        : pool !== undefined
          ? { mode: 'scheduled', ...pool.stats(), cpuSecondsPerSample: pool.estimator.cpuSecondsPerSample }
          : { mode: 'naive', ...naive!.stats() },
      memory,
      ...(scenario !== undefined ? { cl: { tasks: clTasks(built.rounds, scenario, roundsPerTask), classOrder: scenario.classOrder } } : {}),
      staleness: built.staleness,
      strategy: { name: strategy.name, mode: strategy.mode, settings: strategy.settings?.() ?? {} },
      validation: { ...built.validation, maxUpdateNorm: config.maxUpdateNorm > 0 ? config.maxUpdateNorm : null, clipNorm: clipNormOf(strategy) },
      privacy: { secureAggregation: config.secureAggregation, dp: strategy.privacySpent?.() ?? null },
      ...(built.miro !== undefined ? { miro: built.miro } : {}),
      ignoredAssignments: channel.ignoredAssignments,
      storeFile,
      host: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version },
      startedAt,
      outDir,
    };
  } finally {
    clearInterval(killTimer);
    if (onAbort !== undefined) hooks.signal?.removeEventListener('abort', onAbort);
    await pool?.stop();
    // An unfinished run keeps its jobs and models in Redis: started again on this directory, it picks them up.
    await dispatcher?.stop({ keep: !finished });
    await (evaluator ?? await evaluatorReady.catch(() => undefined))?.close();
    for (const c of cleanup.reverse()) await c();
    if (enforcer.root !== null) removeCgroupTree(enforcer.root);
  }
}

/** Over Redis the worker hosts enforce budgets (each under its own `--budget`); `kind` is what most jobs ran under. */
function hostsEnforcer(kind: EnforcerKind, config: SimulationConfig): EnforcerInfo {
  return { kind, requested: config.budget, root: null, notes: ['budgets are enforced on the worker hosts (strata worker --budget); jobEnforcers counts what the jobs ran under'] };
}

function dominant(counts: Record<string, number>): EnforcerKind | undefined {
  return Object.entries(counts).sort((a, b) => b[1] - a[1])[0]?.[0] as EnforcerKind | undefined;
}

/** The clipping bound a strategy reports in its settings (`Clipping`), or null. */
function clipNormOf(strategy: FederatedStrategy): number | null {
  const c = strategy.settings?.()['clipNorm'];
  return typeof c === 'number' && c > 0 ? c : null;
}

/** `--cl`: accuracy on the classes seen so far after the last round of each task. */
function clTasks(rounds: readonly RoundReport[], scenario: ClassIncrementalScenario, roundsPerTask: number): NonNullable<SimulationReport['cl']>['tasks'] {
  const out: NonNullable<SimulationReport['cl']>['tasks'] = [];
  for (const r of rounds) {
    if (r.task === undefined || r.accuracySeen === undefined) continue;
    const lastOfTask = r.round === rounds.at(-1)!.round || r.round % roundsPerTask === 0;
    if (lastOfTask && out.every((t) => t.task !== r.task)) {
      out.push({ task: r.task, classes: scenario.tasks[r.task]!.classes, afterRound: r.round, accuracySeen: r.accuracySeen, accuracy: r.accuracy });
    }
  }
  return out;
}
