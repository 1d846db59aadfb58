export { Coordinator, SERVER_VERSION, type CoordinatorDeps, type CoordinatorState } from './coordinator.js';
export { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions, type SelectionPolicy } from './coordinator-options.js';
export type { CoordinatorStatus } from './coordinator-status.js';
export type { ClientLink } from './client-link.js';
export { RoundEngine, roundSeed } from './round-engine.js';
export type { AcceptedUpdate, EngineState, Evaluation, Evaluator, RoundEngineDeps, RoundEngineObserver, RoundSummary } from './round-engine-types.js';
export { TokenAuthenticator, loadTokensFile, parseTokens } from './server/token-auth.js';
export { createModelHost, flatModelHost, mlModelHost, type ModelHost } from './model-host.js';
export * from './strategies/index.js';
