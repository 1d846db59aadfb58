export { StrataError, isStrataError, type StrataErrorCode } from './strata-error.js';
export { runtimeFile } from './runtime-file.js';
export { serializeError, reviveError, type SerializedError } from './worker-error.js';
