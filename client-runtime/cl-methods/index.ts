import { StrataError } from '../../common/strata-error.js';
import type { ClMethodFactory, ClMethodSettings } from './cl-method.js';
import { derpp } from './derpp.js';
import { experienceReplay } from './er.js';
import { finetune } from './finetune.js';

export type { ClMethod, ClMethodFactory, ClMethodSettings, ComposedBatch, StepContext } from './cl-method.js';
export { derpp, experienceReplay, finetune };
export type { DerppOptions } from './derpp.js';

/** The built-in methods: `finetune` (the lower bound that forgets), `er` (experience replay), `derpp` (DER++, its alpha default 0.3). */
export function builtinClMethods(options: { derppAlpha?: number } = {}): readonly ClMethodFactory[] {
  return Object.freeze([
    { name: 'finetune', create: () => finetune() },
    { name: 'er', create: (s: ClMethodSettings) => experienceReplay(s.replay) },
    { name: 'derpp', create: (s: ClMethodSettings) => derpp({ replay: s.replay, ...(options.derppAlpha !== undefined ? { alpha: options.derppAlpha } : {}) }) },
  ]);
}

export const BUILTIN_CL_METHODS: readonly ClMethodFactory[] = builtinClMethods();

/** The factory named `name` among `methods`, or STRATA_ERR_UNKNOWN_METHOD naming the ones there are. */
export function findClMethod(methods: readonly ClMethodFactory[], name: string): ClMethodFactory {
  const found = methods.find((m) => m.name === name);
  if (found === undefined) {
    throw new StrataError('STRATA_ERR_UNKNOWN_METHOD', `CL method '${name}' is not one this device has (${methods.map((m) => m.name).join(', ')})`, {
      method: name, known: methods.map((m) => m.name),
    });
  }
  return found;
}

/** Checks a list of method factories: names non-empty and unique. */
export function checkClMethods(methods: readonly ClMethodFactory[], option = 'methods'): readonly ClMethodFactory[] {
  const seen = new Set<string>();
  for (const m of methods) {
    if (typeof m?.name !== 'string' || m.name === '' || typeof m.create !== 'function') {
      throw new StrataError('STRATA_ERR_BAD_OPTION', `${option}: every CL method factory needs a name and create()`, { option });
    }
    if (seen.has(m.name)) throw new StrataError('STRATA_ERR_BAD_OPTION', `${option}: two CL methods are named '${m.name}'`, { option, value: m.name });
    seen.add(m.name);
  }
  return methods;
}
