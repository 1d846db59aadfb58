/**
 * `strata/coordinator`: the coordinator daemon (the round engine over
 * WebSocket sessions and a persisted store), federated strategies and the
 * pieces to write your own.
 *
 * @module strata/coordinator
 */
export { Coordinator, SERVER_VERSION, type CoordinatorDeps, type CoordinatorModel, type CoordinatorState } from './coordinator.js';
export { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions, type SelectionPolicy } from './coordinator-options.js';
export type { CoordinatorStatus } from './coordinator-status.js';
export type { ClientLink } from './client-link.js';
export { RoundEngine } from './round-engine.js';
export { roundSeed } from './client-selection.js';
export type { AcceptedUpdate, EngineState, RoundEngineDeps, RoundEngineObserver, RoundSummary } from './round-engine-types.js';
export { TokenAuthenticator, loadTokensFile, parseTokens } from './server/token-auth.js';
export * from './strategies/index.js';
export { CoordinatorStore } from '../storage-tier/coordinator-store.js';
