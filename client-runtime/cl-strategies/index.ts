import { StrataError } from '../../common/strata-error.js';
import type { ClMethodName, ClStrategy } from './cl-strategy.js';
import { derpp } from './derpp.js';
import { experienceReplay } from './er.js';
import { finetune } from './finetune.js';

export type { ClStrategy, ClMethodName, ComposedBatch, StepContext } from './cl-strategy.js';
export { CL_METHODS } from './cl-strategy.js';

export function createClStrategy(name: string, options: { replay: number; alpha?: number }): ClStrategy {
  switch (name as ClMethodName) {
    case 'finetune': return finetune();
    case 'er': return experienceReplay(options.replay);
    case 'derpp': return derpp({ replay: options.replay, alpha: options.alpha });
    default:
      throw new StrataError('STRATA_ERR_BAD_FLAG', `--method: unknown method '${name}' (expected finetune, er or derpp)`, { flag: '--method', value: name });
  }
}
