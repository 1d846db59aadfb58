export { StrataError, isStrataError, type StrataErrorCode } from './strata-error.js';
export { runtimeFile } from './runtime-file.js';
