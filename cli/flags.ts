import { StrataError } from '../common/strata-error.js';
import { parseBackendRequest } from '../ml/backend-request.js';

/** commander argument parsers that fail with one clear line naming the flag. */
export function badFlag(flag: string, value: string, expected: string): StrataError {
  return new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: invalid value '${value}' (expected ${expected})`, { flag, value });
}

export function intFlag(flag: string, min = 1, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw badFlag(flag, value, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`);
    }
    return n;
  };
}

export function numberFlag(flag: string, min: number, max = Number.POSITIVE_INFINITY, exclusiveMin = false): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || (exclusiveMin && n === min) || n > max) {
      throw badFlag(flag, value, `a number ${exclusiveMin ? '>' : '>='} ${min}${Number.isFinite(max) ? ` and <= ${max}` : ''}`);
    }
    return n;
  };
}

export function choiceFlag<T extends string>(flag: string, choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if ((choices as readonly string[]).includes(value)) return value as T;
    throw badFlag(flag, value, `one of ${choices.join(', ')}`);
  };
}

/**
 * Runs library code on a flag's value and answers its coded error as the
 * flag's: the library names options (`STRATA_ERR_BAD_OPTION`, `details.option`),
 * the CLI names flags (`STRATA_ERR_BAD_FLAG`, `details.flag`), keeping the
 * library's code in `details.cause`.
 */
export function flagged<T>(flag: string, run: () => Promise<T>): Promise<T>;
export function flagged<T>(flag: string, run: () => T): T;
export function flagged<T>(flag: string, run: () => T | Promise<T>): T | Promise<T> {
  const map = (err: unknown): never => {
    if (err instanceof StrataError && err.code !== 'STRATA_ERR_BAD_FLAG') {
      throw new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: ${err.message}`, { ...err.details, flag, cause: err.code }, { cause: err });
    }
    throw err;
  };
  try {
    const out = run();
    return out instanceof Promise ? out.catch(map) : out;
  } catch (err) {
    return map(err);
  }
}

/** `--backend`: checked as it is parsed (the value stays a string for `initBackend`). */
export function backendFlag(value: string): string {
  parseBackendRequest(value, '--backend');
  return value;
}

/** A BullMQ queue name (`--queue`). */
export function queueFlag(value: string, flag = '--queue'): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(value)) throw badFlag(flag, value, 'a queue name of letters, digits, _ . - (no ":")');
  return value;
}
