/**
 * `strata/simulation`: a federation of virtual clients on one machine: the
 * coordinator's round engine on a virtual clock, each client running the
 * device runtime under its device's CPU budget (FedHC). Bring your client
 * code as a `ClientApp` module.
 *
 * @module strata/simulation
 */
export { runSimulation, resolveProfiles, simulatedClientId, type SimulationHooks, type SimulationSetup } from './simulation.js';
export {
  defineClientApp, loadClientApp, clientAppUrl, clientAppDataset, BUILTIN_CLIENT_APP, type ClientApp, type ClientAppContext,
} from './client-app.js';
export {
  compileSimulationConfig, simulationConfig, readConfigFile, simulationDefaults, SIMULATION_CONFIG_KEYS, BUDGET_REQUESTS, SIM_MODES,
  type SimulationConfig, type BudgetRequest, type SimulationMode,
} from './simulation-config.js';
export type { SimulationReport, RoundReport, ClientRoundEntry, ClientTotals, ProfileSummary, MiroChoice } from './simulation-report.js';
export { detectEnforcer, CpuGroup, periodFor, removeCgroupTree, type EnforcerInfo, type EnforcerKind } from './budget.js';
export { placeJobs, JobEstimator, type SchedJob, type WorkerCapacity } from './scheduler.js';
export { VirtualClock } from './virtual-clock.js';
export { VirtualChannel, VirtualClientLink, type JobSource, type VirtualClientSpec } from './virtual-channel.js';
export { WorkerPool, type PoolStats, type PoolState, type UtilisationPoint } from './worker-pool.js';
export { RedisDispatcher, type RedisDispatchOptions, type RedisDispatchStats, type HostStats } from './redis/redis-dispatcher.js';
export { WorkerHost, compileWorkerHostOptions, type WorkerHostOptions, type CompiledWorkerHostOptions, type WorkerHostState, type WorkerHostStats } from './redis/worker-host.js';
export { DutyCycleThrottle, threadCpuSeconds, threadId } from './thread-cpu.js';
