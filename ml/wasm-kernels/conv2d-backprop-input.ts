import * as tf from '@tensorflow/tfjs';
import { callKernel, dispose, type KernelArgs, type TensorInfo } from './kernel-call.js';

/**
 * The stock wasm `Conv2DBackpropInput` is a naive loop (~50x slower than
 * XNNPACK's convolution). For stride 1 the input gradient is a plain
 * convolution of dy with the spatially flipped filter whose in/out channels
 * are swapped, padded by (k - 1 - forward padding):
 *
 *   dx[n,i,j,ci] = sum_{a,b,co} dy[n, i+top-a, j+left-b, co] * W[a,b,ci,co]
 *
 * Other cases (stride > 1, unusual padding) run the original kernel.
 */
export function wrapConv2DBackpropInput(original: tf.KernelConfig): tf.KernelConfig {
  const run = original.kernelFunc;
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const dy = inputs['dy'] as TensorInfo;
    const filter = inputs['filter'] as TensorInfo;
    const a = attrs ?? {};
    const dataFormat = (a['dataFormat'] as string | undefined) ?? 'NHWC';
    const inputShape = a['inputShape'] as [number, number, number, number];
    const info = tf.backend_util.computeConv2DInfo(
      inputShape, filter.shape as [number, number, number, number], a['strides'] as number | [number, number], 1,
      a['pad'] as 'same' | 'valid' | number, a['dimRoundingMode'] as 'floor' | undefined, false, 'channelsLast');
    const { top, left } = info.padInfo;
    const padTop = info.filterHeight - 1 - top;
    const padLeft = info.filterWidth - 1 - left;
    const padBottom = info.inHeight + info.filterHeight - 1 - info.outHeight - padTop;
    const padRight = info.inWidth + info.filterWidth - 1 - info.outWidth - padLeft;
    const fast = dataFormat === 'NHWC' && info.strideHeight === 1 && info.strideWidth === 1
      && padTop >= 0 && padLeft >= 0 && padBottom >= 0 && padRight >= 0;
    if (!fast) return run(args) as TensorInfo;

    const flipped = callKernel('Reverse', backend, { x: filter }, { dims: [0, 1] });
    const swapped = callKernel('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] });
    try {
      return callKernel('Conv2D', backend, { x: dy, filter: swapped }, {
        strides: [1, 1], pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1],
      });
    } finally {
      dispose(backend, flipped, swapped);
    }
  };
  return { ...original, kernelFunc: kernelFunc as tf.KernelFunc };
}
