import { StrataError } from '../common/strata-error.js';

/**
 * Where a spec string (a model or data set spec) came from, so its errors
 * name it: a CLI flag (`STRATA_ERR_BAD_FLAG`, `details.flag`) or a library
 * option (`STRATA_ERR_BAD_OPTION`, `details.option`). A bare string is a flag
 * (the parsers' older signature).
 */
export type SpecOrigin = { flag: string } | { option: string } | string;

export function badSpec(origin: SpecOrigin, value: string, why: string): StrataError {
  if (typeof origin === 'string' || 'flag' in origin) {
    const flag = typeof origin === 'string' ? origin : origin.flag;
    return new StrataError('STRATA_ERR_BAD_FLAG', `${flag}: ${why}`, { flag, value });
  }
  return new StrataError('STRATA_ERR_BAD_OPTION', `option "${origin.option}": ${why}`, { option: origin.option, value });
}
