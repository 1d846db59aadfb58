import type { ClStrategy } from './cl-strategy.js';

/** Plain fine-tuning on each task's stream: the lower bound that forgets. */
export function finetune(): ClStrategy {
  return { name: 'finetune', usesMemory: false, storesLogits: false, replayCount: () => 0 };
}
