import * as tf from '@tensorflow/tfjs';
import type { KernelArgs, TensorInfo } from './kernel-call.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * `Tile` by block copies. The stock wasm kernel computes every output
 * element's source index; batch norm's gradient tiles a [C] vector to the
 * whole activation ([N, H, W, C]) every step, and on a small CNN that one
 * tile took half of the step. Here each axis, innermost first, writes its
 * input block once and then repeats the written block with `copyWithin`.
 */
export function wrapTile(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const x = args.inputs['x'] as TensorInfo;
    if (x.dtype === 'string' || x.shape.length === 0) return original.kernelFunc(args) as TensorInfo;
    const reps = (args.attrs?.['reps'] ?? []) as number[];
    const backend = args.backend as unknown as HeapBackend;
    const shape = x.shape;
    const rank = shape.length;
    const outShape = shape.map((d, i) => d * (reps[i] ?? 1));
    const out = backend.makeOutput(outShape, x.dtype);
    const size = outShape.reduce((a, b) => a * b, 1);
    if (size === 0) return out;
    // Views after the allocation: growing the heap detaches old views.
    const dst = backend.typedArrayFromHeap(out);
    const src = backend.typedArrayFromHeap(x);
    const inStride = new Array<number>(rank).fill(1);
    const outStride = new Array<number>(rank).fill(1);
    for (let a = rank - 2; a >= 0; a--) {
      inStride[a] = inStride[a + 1]! * shape[a + 1]!;
      outStride[a] = outStride[a + 1]! * outShape[a + 1]!;
    }
    const fill = (axis: number, inAt: number, outAt: number): void => {
      const n = shape[axis]!;
      if (axis === rank - 1) {
        dst.set(src.subarray(inAt, inAt + n), outAt);
      } else {
        for (let j = 0; j < n; j++) fill(axis + 1, inAt + j * inStride[axis]!, outAt + j * outStride[axis]!);
      }
      const block = n * outStride[axis]!;
      const r = reps[axis] ?? 1;
      // Doubling copies: the written part grows 1, 2, 4, ... blocks.
      let done = 1;
      while (done < r) {
        const k = Math.min(done, r - done);
        dst.copyWithin(outAt + done * block, outAt, outAt + k * block);
        done += k;
      }
    };
    fill(0, 0, 0);
    return out;
  };
  return { ...original, kernelFunc: kernelFunc as tf.KernelFunc };
}
