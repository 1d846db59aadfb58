import { StrataError, badValue } from '../common/strata-error.js';

/**
 * Where a spec string (a model or data set spec) came from, so its errors
 * name it: a CLI flag (`STRATA_ERR_BAD_FLAG`, `details.flag`) or a library
 * option (`STRATA_ERR_BAD_OPTION`, `details.option`). A bare string is a flag
 * (the parsers' older signature).
 */
export type SpecOrigin = { flag: string } | { option: string } | string;

export function badSpec(origin: SpecOrigin, value: string, why: string): StrataError {
  const name = typeof origin === 'string' ? origin : 'flag' in origin ? origin.flag : origin.option;
  return typeof origin === 'object' && 'option' in origin
    ? new StrataError('STRATA_ERR_BAD_OPTION', `${name}: ${why}`, { option: name, value })
    : badValue(name.startsWith('--') ? name : `--${name}`, why, { value });
}
