import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { StrataError } from '../../common/strata-error.js';
import type { CoordinatorOptions } from '../../coordinator/coordinator-options.js';
import { STRATEGY_NAMES, strategyFromName } from '../strategies.js';
import { pinYoungGeneration } from '../../coordinator/young-generation.js';
import { backendFlag, choiceFlag, flagged, intFlag, numberFlag } from '../flags.js';
import { prepareRunDir, printJsonReport, writeReport } from '../run-dir.js';
import { addPrivacyFlags, differentialPrivacyOf, secureAggregationOf, type PrivacyFlags } from '../privacy-flags.js';
import { logEvent } from '../../common/log-events.js';

interface CoordinatorFlags extends PrivacyFlags {
  host?: string; port?: number; db: string; config?: string; tokens?: string; tlsCert?: string; tlsKey?: string;
  dataset?: string; model?: string; rounds?: number; perRound?: number; minClients?: number; overCommit?: number; deadline?: number;
  minCompletion?: number; selection?: 'random' | 'profile-aware'; strategy?: string; serverLr?: number; mu?: number; maxStaleness?: number;
  trim?: number; maxUpdateNorm?: number; clipNorm?: number; epochs?: number; batch?: number; lr?: number; optimizer?: 'adam' | 'sgd'; method?: string; replay?: number; seed?: number;
  backend?: string; heartbeat?: number; maxUploads?: number; drainTimeout?: number; out?: string; json?: boolean;
  dashboardToken?: string; dashboardTokenFile?: string;
}

/** `--config FILE`: JSON with the same names as the flags (camelCase: perRound, overCommit, ...); flags win. */
function readConfig(file: string | undefined): Partial<CoordinatorFlags> {
  if (file === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Partial<CoordinatorFlags>;
  } catch (err) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `--config: cannot read ${file} (${(err as Error).message})`, { flag: '--config', file });
  }
}

function readPem(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: cannot read ${file} (${(err as Error).message})`, { flag, file });
  }
}

export function coordinatorCommand(getLogger: () => Logger): Command {
  return addPrivacyFlags(new Command('coordinator'))
    .description('run the federated coordinator daemon (WebSocket + HTTP: live dashboard at /, /healthz, /status, /metrics)')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <n>', 'port; 0 picks one (default 7070)', intFlag('--port', 0, 65535))
    .requiredOption('--db <file>', 'SQLite database (created if missing; a restart resumes from it)')
    .option('--config <file>', 'JSON options (flag names in camelCase); flags override')
    .option('--tokens <file>', "per-agent tokens: '<agent-id> <token>' lines, # comments")
    .option('--dashboard-token <token>', 'read-only token of the live dashboard at / and of /status (they show client ids); default: open')
    .option('--dashboard-token-file <file>', 'read the dashboard token from a file instead (keeps it out of ps)')
    .option('--tls-cert <file>', 'PEM certificate: serve wss:// and https://')
    .option('--tls-key <file>', 'PEM private key')
    .option('--dataset <name>', 'data set whose test split scores the global model: mnist | synthetic | idx:DIR | csv:DIR | images:DIR (default mnist)')
    .option('--model <spec>', 'mlp | cnn | PATH to a tfjs Layers model.json | flat:N (bare N-parameter vector, no evaluation) (default mlp)')
    .option('--rounds <n>', 'stop after this many rounds (default: run until SIGTERM)', intFlag('--rounds'))
    .option('--per-round <k>', 'updates per round, K (default 10)', intFlag('--per-round'))
    .option('--min-clients <n>', 'ready agents needed to open a round (default K)', intFlag('--min-clients'))
    .option('--over-commit <x>', 'select ceil(K x) agents (default 1.3)', numberFlag('--over-commit', 1, 10))
    .option('--deadline <seconds>', 'round deadline (default 60)', numberFlag('--deadline', 0, 86_400, true))
    .option('--min-completion <f>', 'fraction of K that closes a round at its deadline (default 0.5)', numberFlag('--min-completion', 0, 1, true))
    .option('--selection <policy>', 'random | profile-aware (default random)', choiceFlag('--selection', ['random', 'profile-aware'] as const))
    .option('--strategy <name>', `${STRATEGY_NAMES.join(' | ')} (default fedavg)`, choiceFlag('--strategy', STRATEGY_NAMES))
    .option('--server-lr <x>', 'server learning rate (default 1; fedadam/fedyogi 0.01)', numberFlag('--server-lr', 0, 100, true))
    .option('--mu <x>', 'FedProx proximal weight (default 0.01)', numberFlag('--mu', 0))
    .option('--max-staleness <n>', 'FedBuff: oldest model an update may come from (default 10)', intFlag('--max-staleness', 0))
    .option('--trim <beta>', 'trimmed-mean fraction cut from each end (default 0.1)', numberFlag('--trim', 0, 0.49))
    .option('--max-update-norm <x>', 'reject updates with a larger L2 norm (default: no bound)', numberFlag('--max-update-norm', 0, Number.MAX_VALUE, true))
    .option('--clip-norm <x>', 'scale updates down to this L2 norm (default: off)', numberFlag('--clip-norm', 0, Number.MAX_VALUE, true))
    .option('--epochs <n>', 'local epochs sent to agents (default 1)', intFlag('--epochs'))
    .option('--batch <n>', 'local batch size sent to agents (default 32)', intFlag('--batch'))
    .option('--optimizer <kind>', 'adam | sgd, the agents\' optimizer (default adam)', choiceFlag('--optimizer', ['adam', 'sgd'] as const))
    .option('--lr <x>', 'local learning rate sent to agents (default 0.002)', numberFlag('--lr', 0, 10, true))
    .option('--method <name>', 'CL method sent to agents: finetune | er | derpp (default er: replay from the memory hierarchy)', choiceFlag('--method', ['finetune', 'er', 'derpp'] as const))
    .option('--replay <ratio>', 'replayed memory samples per new sample in a batch, sent to agents (default 1)', numberFlag('--replay', 0, 100))
    .option('--seed <n>', 'seed (default 1)', intFlag('--seed', 0))
    .option('--backend <name>', 'tfjs backend for evaluation: auto | tfjs-node | wasm | cpu', backendFlag)
    .option('--heartbeat <ms>', 'heartbeat interval announced to agents (default 15000)', intFlag('--heartbeat'))
    .option('--max-uploads <n>', 'update frames received at once; other agents wait for an upload grant (default 16)', intFlag('--max-uploads'))
    .option('--drain-timeout <seconds>', 'SIGTERM: wait this long for the open round (default 5)', numberFlag('--drain-timeout', 0))
    .option('--out <dir>', 'run directory for report.json (default runs/coordinator-<timestamp>)')
    .option('--json', 'print the report JSON as the last line of stdout')
    .action(async (cli: CoordinatorFlags) => {
      const flags = { ...readConfig(cli.config), ...definedOnly(cli) } as CoordinatorFlags;
      await runCoordinator(flags, getLogger());
    });
}

/**
 * The model named in round configs: a model file goes out as its absolute
 * path (agents on this machine can load it; others bring their own copy
 * with strata agent --model), cut to its base name past the protocol's
 * 128-character names.
 */
function trainingModelName(resolved: unknown, flag: string | undefined): string {
  if (typeof resolved !== 'string') return (flag ?? 'mlp').split(':')[0]!;
  return resolved.length <= 128 ? resolved : path.basename(resolved);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export async function runCoordinator(f: CoordinatorFlags, logger: Logger): Promise<void> {
  // Before the daemon's own modules load (they would grow it): the young generation stays at the
  // few MiB the CLI needed, and resident memory stays flat as agents connect (young-generation.ts).
  const young = pinYoungGeneration();
  const [{ Coordinator }, { createModelHost }, { loadTokensFile }, { CoordinatorStore }, { compileCoordinatorOptions }] = await Promise.all([
    import('../../coordinator/coordinator.js'), import('../model-host.js'), import('../../coordinator/server/token-auth.js'),
    import('../../storage-tier/coordinator-store.js'), import('../../coordinator/coordinator-options.js'),
  ]);
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `${f.tlsCert === undefined ? '--tls-cert' : '--tls-key'}: TLS needs both --tls-cert and --tls-key`, { flag: '--tls-cert' });
  }
  const tokens = f.tokens === undefined ? undefined : loadTokensFile(f.tokens, '--tokens');
  const secureAggregation = secureAggregationOf(f);
  const dp = differentialPrivacyOf(f);
  const tls = f.tlsCert !== undefined && f.tlsKey !== undefined ? { cert: readPem('--tls-cert', f.tlsCert), key: readPem('--tls-key', f.tlsKey) } : undefined;
  if (f.dashboardToken !== undefined && f.dashboardTokenFile !== undefined) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', '--dashboard-token-file: not both --dashboard-token and --dashboard-token-file', { flag: '--dashboard-token-file' });
  }
  const dashboardToken = f.dashboardToken ?? (f.dashboardTokenFile === undefined ? undefined : readPem('--dashboard-token-file', f.dashboardTokenFile).trim());
  if (dashboardToken !== undefined) flagged(f.dashboardToken !== undefined ? '--dashboard-token' : '--dashboard-token-file', () => compileCoordinatorOptions({ dashboardToken }));
  // The database first: a bad --db fails in a moment, before the model and its data set load.
  const store = CoordinatorStore.open(f.db);
  let host: Awaited<ReturnType<typeof createModelHost>>;
  const outDir = prepareRunDir('coordinator', f.out);
  const seed = f.seed ?? 1;
  try {
    host = await createModelHost({ dataset: f.dataset ?? 'mnist', model: f.model ?? 'mlp', seed, backend: f.backend });
  } catch (err) {
    store.close();
    throw err;
  }
  const log = logger.child({ component: 'cli' });
  log.info({ model: host.description, ...host.info }, 'model ready');
  log.info({ pinned: young.pinned, newSpaceMiB: young.newSpaceBytes / 2 ** 20, ...(young.reason ? { reason: young.reason } : {}) }, 'young generation');
  const options: CoordinatorOptions = {
    host: f.host ?? '127.0.0.1', port: f.port ?? 7070, seed,
    ...(tokens ? { tokens } : {}), ...(tls ? { tls } : {}), ...(dashboardToken !== undefined ? { dashboardToken } : {}),
    ...opt('rounds', f.rounds), ...opt('perRound', f.perRound), ...opt('minClients', f.minClients), ...opt('overCommit', f.overCommit),
    ...opt('roundDeadlineMs', f.deadline === undefined ? undefined : Math.round(f.deadline * 1000)), ...opt('minCompletion', f.minCompletion),
    ...opt('selection', f.selection), ...opt('maxUpdateNorm', f.maxUpdateNorm), ...opt('maxConcurrentUploads', f.maxUploads),
    ...opt('drainTimeoutMs', f.drainTimeout === undefined ? undefined : Math.round(f.drainTimeout * 1000)),
    training: definedOnly({
      model: trainingModelName(host.info['model'], f.model), epochs: f.epochs, batchSize: f.batch, learningRate: f.lr, optimizer: f.optimizer, method: f.method, replay: f.replay,
    }),
    ...(f.heartbeat === undefined ? {} : { limits: { heartbeatMs: f.heartbeat } }),
    ...(secureAggregation !== undefined ? { secureAggregation } : {}),
  };
  let coordinator: InstanceType<typeof Coordinator>;
  const strategy = strategyFromName(f.strategy ?? 'fedavg', {
    serverLearningRate: f.serverLr, fedproxMu: f.mu, maxStaleness: f.maxStaleness, trimmedMeanBeta: f.trim, clipNorm: f.clipNorm, evaluate: host.evaluate, dp,
  });
  try {
    coordinator = new Coordinator(options, { strategy, model: host, store, logger });
  } catch (err) {
    store.close();
    throw err;
  }
  const startedAt = new Date().toISOString();
  try {
    await coordinator.start();
  } catch (err) {
    store.close();
    throw err;
  }
  process.stdout.write(`coordinator listening on ${coordinator.url} (http ${coordinator.httpUrl})\n`);
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ ...logEvent('coordinator.draining'), signal }, 'signal: draining');
    void coordinator.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await coordinator.finished;
  await coordinator.stop();
  const status = coordinator.status();
  store.close();
  const report = {
    command: 'coordinator', model: host.description, ...host.info, startedAt, outDir, db: f.db, status, options: { ...options, tokens: undefined, tls: undefined, dashboardToken: undefined },
    miro: { boundaries: coordinator.boundaries },
  };
  writeReport(outDir, report);
  if (f.json === true) printJsonReport(report);
  else process.stdout.write(`coordinator stopped after ${status.roundsCompleted} rounds | last accuracy ${status.lastAccuracy?.toFixed(4) ?? 'n/a'} | report ${outDir}/report.json\n`);
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
