import type { ClMethod } from './cl-method.js';

/** Experience replay: each batch mixes `replay` memory samples with the stream. */
export function experienceReplay(replay: number): ClMethod {
  return { name: 'er', usesMemory: true, storesLogits: false, replayCount: (_stream, size) => Math.min(replay, size) };
}
