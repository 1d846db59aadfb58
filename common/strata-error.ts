import type { StrataErrorCode } from './error-codes.js';

export type { StrataErrorCode } from './error-codes.js';

/**
 * Every error Strata raises on purpose carries a stable `code` from one
 * closed list (common/error-codes.ts). Tests and callers match on the code,
 * never on the message text.
 */
export class StrataError extends Error {
  readonly code: StrataErrorCode;
  /** Extra machine-readable facts (file, flag, field, ...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: StrataErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StrataError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isStrataError(err: unknown, code?: StrataErrorCode): err is StrataError {
  return err instanceof StrataError && (code === undefined || err.code === code);
}

/**
 * An invalid value, as the one who gave it named it: a command-line flag
 * (`--threads`: STRATA_ERR_BAD_FLAG, `details.flag`) or a library option or
 * environment variable (`threads`, `STRATA_THREADS`: STRATA_ERR_BAD_OPTION,
 * `details.option`). Parsers of spec strings take the name from their caller.
 */
export function badValue(name: string, message: string, details: Record<string, unknown> = {}): StrataError {
  return name.startsWith('--')
    ? new StrataError('STRATA_ERR_BAD_FLAG', `${name}: ${message}`, { ...details, flag: name })
    : new StrataError('STRATA_ERR_BAD_OPTION', `${name}: ${message}`, { ...details, option: name });
}
