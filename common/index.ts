export { StrataError, badValue, isStrataError, type StrataErrorCode } from './strata-error.js';
export { runtimeFile } from './runtime-file.js';
export { serializeError, reviveError, type SerializedError } from './worker-error.js';
export { ERROR_CODES, STRATA_ERROR_CODES, isStrataErrorCode } from './error-codes.js';
export { LOG_EVENTS, logEvent, type LogEvent } from './log-events.js';
