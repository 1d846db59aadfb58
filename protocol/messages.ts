import { z } from 'zod';
import { LAYOUT_HASH_PATTERN } from './layout-hash.js';
import {
  SecAggKeysSchema, SecAggRelaySchema, SecAggSetupSchema, SecAggSharesSchema, SecAggUnmaskSchema, SecAggUnmaskSharesSchema,
} from './secagg-messages.js';
import { agentId, positiveInt, uint32 } from './wire-fields.js';

/**
 * JSON (text) messages between coordinator and agents: one discriminated
 * union on `type`. Weights never travel here; they go as binary weight
 * frames (weight-frame.ts) matched to these messages by roundId.
 *
 * Flow: agent `hello` -> coordinator `welcome` (or error + close);
 * coordinator `round-assignment` then a binary `model` frame; agent `result`
 * then a binary `update`/`delta` frame; coordinator `update-ack`.
 * Either side: `heartbeat`, `error`, `bye`.
 *
 * Secure aggregation (feature `secure-aggregation`; secure-aggregation/):
 * with the assignment the agent sends `secagg-keys`; the coordinator answers
 * `secagg-setup` (its neighbours' keys); the agent deals its seeds' shares
 * (`secagg-shares`), the coordinator relays each neighbour's to it
 * (`secagg-relay`); the agent's `result` is followed by a `masked` weight
 * frame; after the round's masked uploads the coordinator sends the
 * survivors `secagg-unmask`, answered with `secagg-unmask-shares`.
 *
 * Optional features are negotiated within a version: the agent lists what it
 * supports in `hello.features`, the coordinator answers with the ones it will
 * use in `welcome.features`, and a peer that knows nothing of them (both
 * fields are optional) keeps the base flow. `upload-grant`: after its
 * `result`, the agent holds its update frame until the coordinator sends
 * `upload-grant` for that round, so the coordinator bounds the update bytes in
 * flight without anything buffered for agents that wait; an `update-ack` or
 * `error` for the round, a new assignment, or a closed socket withdraws the offer.
 *
 * Unknown object keys are stripped, not rejected, so a peer may add optional
 * fields within a protocol version; anything else bumps PROTOCOL_VERSION.
 */
/** 2: weight frames of version 2 (their faster checksum, frame-checksum.ts). */
export const PROTOCOL_VERSION = 2;

const nonNegative = z.number().min(0);
const name = z.string().min(1).max(128);
const layoutHash = z.string().regex(LAYOUT_HASH_PATTERN);
const errorCode = z.string().regex(/^STRATA_ERR_[A-Z0-9_]+$/);
/** Unknown feature names are kept (and ignored by the other side), so new ones need no version bump. */
const features = z.array(z.string().regex(/^[a-z0-9-]{1,64}$/)).max(32);

/** Pull-based uploads: the agent sends its update frame only when granted (see `upload-grant`). */
export const UPLOAD_GRANT_FEATURE = 'upload-grant';
/**
 * Secure aggregation, SecAgg+ style (secure-aggregation/): the agent takes
 * part in the key, share, masked-upload and unmasking stages of a round
 * whose assignment carries `secureAggregation`. A coordinator that runs
 * secure aggregation refuses an agent without it (STRATA_ERR_SECAGG_UNSUPPORTED).
 */
export const SECURE_AGGREGATION_FEATURE = 'secure-aggregation';
/** Features this implementation knows. */
export const PROTOCOL_FEATURES: readonly string[] = Object.freeze([UPLOAD_GRANT_FEATURE, SECURE_AGGREGATION_FEATURE]);

export const CapabilitiesSchema = z.object({
  models: z.array(name).max(64),
  datasets: z.array(name).max(64),
  clMethods: z.array(name).max(64),
  /** Largest model this device accepts, in parameters. */
  maxParams: positiveInt.optional(),
});

export const HelloSchema = z.object({
  type: z.literal('hello'),
  protocolVersion: z.literal(PROTOCOL_VERSION),
  agentId,
  token: z.string().min(1).max(1024),
  /** Device profile name (profiles/). */
  profile: name,
  capabilities: CapabilitiesSchema,
  /** Optional protocol features the agent supports (PROTOCOL_FEATURES). */
  features: features.optional(),
});

export const WireLimitsSchema = z.object({
  maxFrameBytes: positiveInt,
  maxTextBytes: positiveInt,
  maxParams: positiveInt,
  messagesPerSecond: z.number().positive(),
  messageBurst: positiveInt,
});

/** Differential privacy asked of a device with its assignment. */
export const DeviceDpSchema = z.object({
  /** `local`: the device clips its update to `clip` and adds N(0, (z clip)^2) noise; `central`: it clips (the noise is the coordinator's, or shares of it). */
  mode: z.enum(['local', 'central']),
  clip: z.number().positive(),
  noiseMultiplier: nonNegative,
  /** Distributed DP (central under secure aggregation): the device adds N(0, (z clip)^2 / noiseShares), so `noiseShares` updates together carry the central noise. */
  noiseShares: positiveInt.optional(),
});

/** What a coordinator tells agents about the privacy it runs (in `welcome`). */
export const PrivacySettingsSchema = z.object({
  secureAggregation: z.boolean(),
  dp: z.enum(['off', 'local', 'central']),
  noiseMultiplier: nonNegative.optional(),
  clip: z.number().positive().optional(),
});

export const WelcomeSchema = z.object({
  type: z.literal('welcome'),
  protocolVersion: z.literal(PROTOCOL_VERSION),
  agentId,
  serverVersion: z.string().min(1).max(64),
  heartbeatMs: positiveInt,
  limits: WireLimitsSchema,
  /** The agent's features the coordinator will use on this connection; absent = none. */
  features: features.optional(),
  /** The privacy the coordinator runs (absent: none), so an agent with a floor can refuse a weaker one before it trains. */
  privacy: PrivacySettingsSchema.optional(),
});

export const TrainingConfigSchema = z.object({
  model: name,
  epochs: positiveInt,
  batchSize: positiveInt,
  learningRate: z.number().positive(),
  /** Continual-learning method: finetune | er | derpp | ... */
  method: name,
  /** Replay ratio: replayed samples per stream sample in a batch. */
  replay: nonNegative,
  /** FedProx proximal term; absent for plain FedAvg. */
  fedproxMu: nonNegative.optional(),
  /** The device's optimizer (a fresh one each round). Absent (a coordinator before this field): sgd. */
  optimizer: z.enum(['adam', 'sgd']).optional(),
  /** Differential privacy the device applies to its update; absent: none. */
  dp: DeviceDpSchema.optional(),
  seed: uint32,
});

export const RoundAssignmentSchema = z.object({
  type: z.literal('round-assignment'),
  roundId: uint32,
  modelVersion: uint32,
  /** Time budget from receipt, and the absolute deadline (epoch ms) it came from. */
  deadlineMs: positiveInt,
  deadlineAt: z.int().min(0),
  layoutHash,
  numParams: positiveInt,
  /** Send back the full weights (`update`) or weights minus the model (`delta`). */
  updateKind: z.enum(['update', 'delta']),
  config: TrainingConfigSchema,
  /** Present when the round runs secure aggregation: answer with `secagg-keys` at once, and upload a `masked` frame. */
  secureAggregation: z.object({
    /** How the device weights its update before masking: by its sample count (FedAvg, FedProx) or 1 each (DP). */
    weighting: z.enum(['samples', 'uniform']),
  }).optional(),
});

export const JoulesSchema = z.object({
  compute: nonNegative,
  storage: nonNegative,
  radio: nonNegative,
  idle: nonNegative,
  total: nonNegative,
});

export const ResultMetricsSchema = z.object({
  numSamples: uint32,
  loss: z.number(),
  accuracy: z.number().min(0).max(1),
  /** Time the round would take on the profiled device. */
  deviceSeconds: nonNegative,
  /** Wall time on the host that actually ran it. */
  hostSeconds: nonNegative,
});

const fraction = z.number().min(0).max(1);

/** The memory-hierarchy configuration a device trains with (Miro's knobs). */
export const MemoryConfigSchema = z.object({
  /** Episodic-memory slots in RAM. */
  memory: z.int().min(0),
  /** Fraction of each round's new samples kept and trained on. */
  streamBuffer: fraction,
  /** Fraction of replayed memory samples swapped with stored ones per step. */
  swapRatio: fraction,
});

/** One candidate Miro tried at a task boundary. */
export const MiroCandidateSchema = MemoryConfigSchema.extend({
  key: name,
  /** Held-out accuracy on the tasks seen, after the trial. */
  accuracy: fraction,
  /** Estimated joules of the task under it (device model). */
  joules: nonNegative,
  /** Above the accuracy cutline. */
  kept: z.boolean(),
  chosen: z.boolean(),
});

/**
 * What a device says about itself with a result (optional: a device that
 * does not profile sends none): the configuration it trained with, and, at
 * a task boundary (new classes in its stream), what Miro tried and chose.
 */
export const DeviceReportSchema = z.object({
  /** The device's continual-learning task (a group of classes new to it) this round trained. */
  task: z.int().min(0).optional(),
  config: MemoryConfigSchema.optional(),
  /** Of `joules.total`: Miro's profiling this round. */
  profilingJoules: nonNegative.optional(),
  boundary: z.object({
    task: z.int().min(0),
    candidates: z.array(MiroCandidateSchema).max(256),
    chosen: name,
    /** Candidates whose trial was skipped as moot. */
    skipped: z.int().min(0),
  }).optional(),
});

export const ResultSchema = z.object({
  type: z.literal('result'),
  roundId: uint32,
  modelVersion: uint32,
  metrics: ResultMetricsSchema,
  joules: JoulesSchema,
  /** Where joules came from: the power model, RAPL counters, or an external meter. */
  energySource: z.enum(['model', 'rapl', 'measured']),
  device: DeviceReportSchema.optional(),
});

export const UpdateAckSchema = z.object({
  type: z.literal('update-ack'),
  roundId: uint32,
  accepted: z.boolean(),
  /** Why it was rejected, when it was. */
  code: errorCode.optional(),
});

/** Coordinator -> agent (feature `upload-grant`): send the update frame for this round now. */
export const UploadGrantSchema = z.object({
  type: z.literal('upload-grant'),
  roundId: uint32,
});

export const HeartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  /** Sender's clock (epoch ms), for RTT / skew estimates. */
  sentAt: z.int().min(0).optional(),
});

export const ErrorMessageSchema = z.object({
  type: z.literal('error'),
  code: errorCode,
  message: z.string().max(1024),
  details: z.record(z.string(), z.unknown()).optional(),
  /** The round the error is about, if any. */
  roundId: uint32.optional(),
});

export const ByeSchema = z.object({
  type: z.literal('bye'),
  reason: z.string().max(256).optional(),
  /**
   * From the coordinator: the federation is complete and it will assign
   * nothing more (an agent may exit; `strata agent --exit-when-done` does).
   * Without it a bye is only the end of this connection.
   */
  final: z.boolean().optional(),
  /** With `final`: rounds the federation completed. */
  roundsCompleted: uint32.optional(),
});

export const MessageSchema = z.discriminatedUnion('type', [
  HelloSchema,
  WelcomeSchema,
  RoundAssignmentSchema,
  ResultSchema,
  UpdateAckSchema,
  UploadGrantSchema,
  HeartbeatSchema,
  ErrorMessageSchema,
  ByeSchema,
  SecAggKeysSchema,
  SecAggSetupSchema,
  SecAggSharesSchema,
  SecAggRelaySchema,
  SecAggUnmaskSchema,
  SecAggUnmaskSharesSchema,
]);

export type Message = z.infer<typeof MessageSchema>;
export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
export type Capabilities = z.infer<typeof CapabilitiesSchema>;
export type WireLimits = z.infer<typeof WireLimitsSchema>;
export type TrainingConfig = z.infer<typeof TrainingConfigSchema>;
export type Joules = z.infer<typeof JoulesSchema>;
export type ResultMetrics = z.infer<typeof ResultMetricsSchema>;
export type DeviceReport = z.infer<typeof DeviceReportSchema>;
export type MemoryConfig = z.infer<typeof MemoryConfigSchema>;
export type MiroCandidateReport = z.infer<typeof MiroCandidateSchema>;
export type HelloMessage = MessageOf<'hello'>;
export type WelcomeMessage = MessageOf<'welcome'>;
export type RoundAssignmentMessage = MessageOf<'round-assignment'>;
export type ResultMessage = MessageOf<'result'>;
export type UpdateAckMessage = MessageOf<'update-ack'>;
export type UploadGrantMessage = MessageOf<'upload-grant'>;
export type HeartbeatMessage = MessageOf<'heartbeat'>;
export type ErrorMessage = MessageOf<'error'>;
export type ByeMessage = MessageOf<'bye'>;
export type DeviceDp = z.infer<typeof DeviceDpSchema>;
export type PrivacySettings = z.infer<typeof PrivacySettingsSchema>;
