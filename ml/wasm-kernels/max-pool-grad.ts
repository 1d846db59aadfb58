import * as tf from '@tensorflow/tfjs';
import type { KernelArgs, TensorInfo } from './kernel-call.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/**
 * MaxPool gradient: each output's gradient goes to the first maximal input
 * of its window (the same tie rule as tfjs's reference kernels). A direct
 * loop over the wasm heap; the stock wasm kernel is several times slower.
 */
function maxPoolGrad(args: KernelArgs): TensorInfo {
  const { inputs, attrs } = args;
  const backend = args.backend as unknown as HeapBackend;
  const dy = inputs['dy'] as TensorInfo;
  const input = inputs['input'] as TensorInfo;
  const a = attrs ?? {};
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], a['filterSize'] as [number, number] | number,
    a['strides'] as [number, number] | number, 1, a['pad'] as 'same' | 'valid' | number, a['dimRoundingMode'] as 'floor' | undefined);
  const out = backend.makeOutput(input.shape, 'float32');
  // Views only after every allocation: growing the heap detaches old views.
  const dx = backend.typedArrayFromHeap(out);
  const x = backend.typedArrayFromHeap(input);
  const g = backend.typedArrayFromHeap(dy);
  dx.fill(0);
  const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  for (let n = 0; n < batchSize; n++) {
    const xb = n * H * W * C;
    const yb = n * OH * OW * C;
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * sh - top;
      const yStart = Math.max(0, y0);
      const yEnd = Math.min(H, y0 + fh);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * sw - left;
        const xStart = Math.max(0, x0);
        const xEnd = Math.min(W, x0 + fw);
        const yo = yb + (oy * OW + ox) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let y = yStart; y < yEnd; y++) {
            let p = xb + (y * W + xStart) * C + c;
            for (let xx = xStart; xx < xEnd; xx++, p += C) {
              const v = x[p]!;
              if (v > best || at < 0) {
                best = v;
                at = p;
              }
            }
          }
          if (at >= 0) dx[at] = dx[at]! + g[yo + c]!;
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
