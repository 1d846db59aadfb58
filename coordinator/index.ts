export { Coordinator, SERVER_VERSION, type CoordinatorDeps, type CoordinatorState } from './coordinator.js';
export { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions, type SelectionPolicy } from './coordinator-options.js';
export type { CoordinatorStatus } from './coordinator-status.js';
export { RoundEngine } from './round-engine.js';
export type { EngineState, Evaluation, Evaluator, RoundSummary } from './round-engine-types.js';
export { TokenAuthenticator, loadTokensFile, parseTokens } from './token-auth.js';
export { createModelHost, flatModelHost, mlModelHost, type ModelHost } from './model-host.js';
export * from './strategies/index.js';
