import type { ClMethod } from './cl-method.js';

/** Plain fine-tuning on each task's stream: the lower bound that forgets. */
export function finetune(): ClMethod {
  return { name: 'finetune', usesMemory: false, storesLogits: false, replayCount: () => 0 };
}
