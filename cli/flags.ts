import { StrataError } from '../common/strata-error.js';

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
