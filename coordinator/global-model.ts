import type { WeightFrameInit } from '../protocol/index.js';

/**
 * The current global model: flat float32 weights, their version and layout,
 * and the encoded `model` frame of the current round — encoded once and the
 * same Buffer sent to every assigned agent (ws queues references, not copies).
 */
export class GlobalModel {
  readonly layoutHash: string;
  readonly numParams: number;
  #weights: Float32Array;
  #version: number;
  #frame: { roundId: number; version: number; buffer: Buffer } | undefined;

  constructor(weights: Float32Array, version: number, layoutHash: string) {
    this.#weights = weights;
    this.#version = version;
    this.layoutHash = layoutHash;
    this.numParams = weights.length;
  }

  get weights(): Float32Array {
    return this.#weights;
  }

  get version(): number {
    return this.#version;
  }

  advance(weights: Float32Array, version: number): void {
    this.#weights = weights;
    this.#version = version;
    this.#frame = undefined;
  }

  frame(roundId: number, encode: (init: WeightFrameInit, weights: Float32Array) => Buffer): Buffer {
    if (this.#frame?.roundId !== roundId || this.#frame.version !== this.#version) {
      const buffer = encode({ kind: 'model', roundId, modelVersion: this.#version, layoutHash: this.layoutHash }, this.#weights);
      this.#frame = { roundId, version: this.#version, buffer };
    }
    return this.#frame.buffer;
  }
}
