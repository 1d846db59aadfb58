/**
 * `strata/device`: the device side. The device runtime every client runs
 * (its model, a CL method over the CarM memory hierarchy, plugins, device
 * accounting, Miro) over its stream of samples; the agent that connects it
 * to a coordinator; the pieces to bring your own CL method or plugin.
 *
 * @module strata/device
 */
export { DeviceRuntime, hashId, type DeviceMemoryOptions, type DeviceRuntimeOptions, type RoundOutcome, type RoundWork } from './device-runtime.js';
export { DeviceStream, STREAM_START, type RoundArrivals, type SampleStream, type StreamChunk, type StreamPosition, type StreamRound, type StreamSchedule } from './device-stream.js';
export { LiveStream } from './live-stream.js';
export { DeviceAgent, compileDeviceAgentOptions, type AgentReport, type AgentRoundRecord, type DeviceAgentOptions, type DeviceAgentState } from './agent.js';
export { AgentConnection, type AgentConnectionOptions, type AgentConnectionState, type TrainFn, type TrainOutcome } from './agent-connection.js';
export { SecAggClient, type MaskedUpdate } from '../secure-aggregation/secagg-client.js';
export { privatizeUpdate, deviceNoiseStd, type PrivatizedUpdate } from '../privacy/device-privacy.js';
export { checkPrivacyFloor, effectiveDeviceDp, type PrivacyFloor } from '../privacy/privacy-floor.js';
export { Inbox, parseSampleCsv, type InboxOptions, type InboxShape, type InboxStats } from './inbox.js';
export { localShard, wholeShard, parseShardSpec, type LocalShard, type ShardSpec } from './local-shard.js';
export {
  BUILTIN_CL_METHODS, builtinClMethods, checkClMethods, derpp, experienceReplay, finetune, findClMethod,
  type ClMethod, type ClMethodFactory, type ClMethodSettings, type ComposedBatch, type DerppOptions, type StepContext,
} from './cl-methods/index.js';
export type { ClPlugin, ClLoopControl, ClTaskRows, StepReport, TaskStart, TaskTiming } from './cl-plugin.js';
export { ContinualLearner } from './continual-learner.js';
export { MemoryHierarchy, type MemoryHierarchyOptions, type MemoryHierarchyStats, type StorageBudget } from './carm/memory-hierarchy.js';
export type { SwapMode } from './carm/swap-manager.js';
export type { SwapPolicyName } from './carm/swap-policy.js';
export { MiroPlugin } from './miro/miro-plugin.js';
export { MIRO_DEFAULTS, compileMiroOptions, type MiroOptions } from './miro/miro-options.js';
export { DeviceAccounting } from './device-accounting.js';
export { runClExperiment, CL_DEFAULTS, type ClConfig, type ClReport } from './cl-experiment.js';
export type { ArrivingSample } from '../storage-tier/arrival-log.js';
