/**
 * Every code a Strata error can carry: one closed list, so a misspelled
 * code does not type-check. Callers and tests match on the code, never on
 * the message. The protocol's codes (and the WebSocket close code each
 * implies) are the subset in `protocol/error-codes.ts`.
 */
export const ERROR_CODES = {
  // Options, flags, configuration
  STRATA_ERR_BAD_OPTION: 'a library option is invalid (details.option names it)',
  STRATA_ERR_BAD_FLAG: 'a command-line flag is invalid (details.flag names it)',
  STRATA_ERR_BAD_CONFIG: 'a configuration file or the combination of settings is invalid (details.key names it)',
  STRATA_ERR_STATE: 'a call that the object\'s current state does not allow (details.state)',
  STRATA_ERR_ABORTED: 'the work was aborted',
  STRATA_ERR_INTERNAL: 'an unexpected failure (a bug)',

  // Protocol (see protocol/error-codes.ts for close codes)
  STRATA_ERR_BAD_FRAME: 'a message or weight frame fails structural or schema validation',
  STRATA_ERR_AUTH: 'missing or wrong token',
  STRATA_ERR_PROTOCOL_VERSION: 'the peer speaks another protocol version',
  STRATA_ERR_HANDSHAKE: 'no hello first, or none in time',
  STRATA_ERR_HEARTBEAT_TIMEOUT: 'no traffic within the heartbeat timeout',
  STRATA_ERR_UNKNOWN_TYPE: 'a message type this protocol version does not know',
  STRATA_ERR_MALFORMED_JSON: 'a text frame that is not JSON',
  STRATA_ERR_FRAME_TOO_LARGE: 'a frame larger than the negotiated limit',
  STRATA_ERR_RATE_LIMIT: 'messages faster than the per-connection rate limit',
  STRATA_ERR_SESSION_REPLACED: 'another connection authenticated as the same client',
  STRATA_ERR_TOO_MANY_ERRORS: 'the peer keeps sending bad input',
  STRATA_ERR_UNEXPECTED_MESSAGE: 'a valid message at a moment it is not allowed',
  STRATA_ERR_BAD_UPDATE_LENGTH: 'an update whose element count differs from the model\'s',
  STRATA_ERR_NON_FINITE: 'NaN or Infinity in weights',
  STRATA_ERR_UPDATE_NORM: 'an update norm above the configured bound',
  STRATA_ERR_STALE_ROUND: 'an update or result for a round that is not the open one, or too stale',
  STRATA_ERR_BAD_CHECKSUM: 'a weight payload checksum mismatch',
  STRATA_ERR_LAYOUT_MISMATCH: 'a weight layout differs from the model\'s',
  STRATA_ERR_BAD_LAYOUT: 'a weight layout description is itself invalid',
  STRATA_ERR_SHUTTING_DOWN: 'the coordinator is shutting down',
  STRATA_ERR_CONNECT: 'an agent gave up connecting',
  STRATA_ERR_LISTEN: 'the coordinator cannot listen on its address',
  STRATA_ERR_BAD_TOKENS: 'a tokens file is malformed (details.file, details.line)',

  STRATA_ERR_SECAGG_UNSUPPORTED: 'the coordinator runs secure aggregation and the agent does not offer it',
  STRATA_ERR_SECAGG_BAD_SHARE: 'a secure-aggregation message is wrong (a share that does not match its dealer\'s commitment, a missing or unreadable share)',
  STRATA_ERR_PRIVACY_FLOOR: 'the coordinator runs weaker privacy than the agent requires (secure aggregation, DP mode or noise)',

  // Rounds and aggregation
  STRATA_ERR_SECAGG_INCOMPATIBLE: 'secure aggregation is on with a strategy or setting that needs individual updates (median, trimmed mean, FedBuff, norm bounds, server-side clipping)',
  STRATA_ERR_SECAGG_ABORTED: 'a secure-aggregation round could not be unmasked (too few parties or shares); it is run again',
  STRATA_ERR_EMPTY_ROUND: 'a round closed with nothing to aggregate',
  STRATA_ERR_BAD_STRATEGY: 'a strategy broke its contract (wrong length, non-finite model)',

  // Stores (SQLite files)
  STRATA_ERR_STORE_OPEN: 'a store file cannot be opened',
  STRATA_ERR_STORE_NOT_STRATA: 'a file that is not a Strata store',
  STRATA_ERR_STORE_WRONG_KIND: 'a Strata store of another kind (a sample store given as a coordinator database, or the reverse)',
  STRATA_ERR_STORE_CORRUPT: 'a store file is corrupt',
  STRATA_ERR_STORE_TOO_NEW: 'a store written by a newer Strata',
  STRATA_ERR_STORE_OUTDATED: 'a store that needs migrating and is open read-only',
  STRATA_ERR_STORE_MIGRATION: 'a store migration failed',
  STRATA_ERR_STORE_IO: 'a store read or write failed',
  STRATA_ERR_STORE_FULL: 'the disk is full',
  STRATA_ERR_STORE_READONLY: 'a write to a store open read-only',
  STRATA_ERR_STORE_CLOSED: 'a call on a closed store',
  STRATA_ERR_STORE_STATE: 'a store holds a state the call does not allow (a round not open, bad strategy state)',
  STRATA_ERR_BAD_SAMPLE: 'a sample with a wrong shape, label or value',
  STRATA_ERR_BAD_SLOT: 'an episodic-memory slot out of range',

  // Data and models
  STRATA_ERR_DATASET_MISSING: 'a data set file or directory is missing',
  STRATA_ERR_DATASET_FILE: 'a data set file is malformed (details.file, and the row or image)',
  STRATA_ERR_DATASET_EMPTY: 'a data set or shard holds no samples',
  STRATA_ERR_MODEL_FILE: 'a model file is missing or malformed (details.file)',
  STRATA_ERR_MODEL_UNSUPPORTED: 'a model needs a layer or kernel this backend cannot train (details.layer, details.kernel)',
  STRATA_ERR_MODEL_SHAPE: 'a model\'s input or output does not fit the data',
  STRATA_ERR_WORK_UNKNOWN_LAYER: 'the device model cannot count a layer\'s work',
  STRATA_ERR_WORK_UNKNOWN_SHAPE: 'the device model cannot count a layer with an unknown dimension',
  STRATA_ERR_WORK_UNKNOWN_ACTIVATION: 'the device model cannot count an activation',
  STRATA_ERR_UNKNOWN_METHOD: 'a round asks for a CL method the device does not have',

  // Backends, threads, devices
  STRATA_ERR_BACKEND: 'the tfjs backend cannot do what was asked',
  STRATA_ERR_BACKEND_UNAVAILABLE: 'a requested tfjs backend cannot start here',
  STRATA_ERR_PROFILE_UNKNOWN: 'an unknown device profile',
  STRATA_ERR_PROFILE_INVALID: 'a device profile file is invalid',
  STRATA_ERR_SENSOR_UNAVAILABLE: 'a requested power sensor is not available',

  // Worker threads and processes
  STRATA_ERR_WORKER: 'a worker thread failed',
  STRATA_ERR_SWAP_WORKER: 'the CarM swap worker failed',
  STRATA_ERR_STREAM_WRITER: 'the CarM stream writer failed',
  STRATA_ERR_SWAP_SAMPLE_MISMATCH: 'a swapped-in sample does not match its slot',
  STRATA_ERR_EVALUATOR: 'the simulation\'s evaluator thread failed',
  STRATA_ERR_CLIENT_FAILED: 'a simulated client failed',
  STRATA_ERR_CLIENT_APP: 'a simulation client app module cannot be loaded or is malformed',
  STRATA_ERR_SIM_STALLED: 'a simulation can make no progress',
  STRATA_ERR_BUDGET_UNAVAILABLE: 'the requested CPU budget enforcer is not available here',
  STRATA_ERR_BUDGET_CGROUP: 'a cgroup write failed',
  STRATA_ERR_REDIS: 'Redis cannot be reached at the given URL, or a command on it failed (details.url, password removed)',
} as const;

export type StrataErrorCode = keyof typeof ERROR_CODES;

export const STRATA_ERROR_CODES = Object.freeze(Object.keys(ERROR_CODES)) as readonly StrataErrorCode[];

export function isStrataErrorCode(code: unknown): code is StrataErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
