/**
 * `strata/coordinator`: the coordinator daemon (the round engine over
 * WebSocket sessions and a persisted store), federated strategies and the
 * pieces to write your own, secure aggregation (SecAgg+) and differential
 * privacy (`DifferentialPrivacy`, the RDP accountant).
 *
 * @module strata/coordinator
 */
export { Coordinator, SERVER_VERSION, type CoordinatorDeps, type CoordinatorModel, type CoordinatorState } from './coordinator.js';
export { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions, type SelectionPolicy } from './coordinator-options.js';
export type { CoordinatorStatus } from './coordinator-status.js';
export type { ClientLink } from './client-link.js';
export { RoundEngine } from './round-engine.js';
export { roundSeed } from './client-selection.js';
export type { AcceptedUpdate, EngineState, RoundEngineDeps, RoundEngineObserver, RoundSummary, SecAggSummary } from './round-engine-types.js';
export { DifferentialPrivacy, type DifferentialPrivacyOptions } from '../privacy/differential-privacy.js';
export { RdpAccountant, DEFAULT_RDP_ORDERS, rdpToEpsilon, sampledGaussianRdp } from '../privacy/rdp-accountant.js';
export { GaussianNoise, type NormalSource } from '../privacy/gaussian-noise.js';
export { checkSecureAggregation, type SecureAggregationOptions, type SecAggWeighting } from '../secure-aggregation/compatibility.js';
export { SecAggRound, MIN_SECAGG_PARTIES, DEFAULT_SECAGG_RANGE, type SecAggRoundOptions, type SecAggStage } from '../secure-aggregation/secagg-round.js';
export { TokenAuthenticator, loadTokensFile, parseTokens } from './server/token-auth.js';
export * from './strategies/index.js';
export { CoordinatorStore } from '../storage-tier/coordinator-store.js';
