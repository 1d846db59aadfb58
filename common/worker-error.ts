import { isStrataErrorCode } from './error-codes.js';
import { StrataError, type StrataErrorCode } from './strata-error.js';

/** A StrataError flattened to cross a worker boundary (postMessage or shared memory). */
export interface SerializedError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export function serializeError(err: unknown, fallbackCode: StrataErrorCode = 'STRATA_ERR_WORKER'): SerializedError {
  if (err instanceof StrataError) return { code: err.code, message: err.message, details: { ...err.details } };
  return { code: fallbackCode, message: err instanceof Error ? err.message : String(err) };
}

export function reviveError(e: SerializedError, fallback: StrataErrorCode): StrataError {
  const code = isStrataErrorCode(e.code) ? e.code : fallback;
  return new StrataError(code, e.message, e.details ?? {});
}
