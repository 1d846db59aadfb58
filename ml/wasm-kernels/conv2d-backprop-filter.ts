import * as tf from '@tensorflow/tfjs';
import { callKernel, dispose, type KernelArgs, type TensorInfo } from './kernel-call.js';

/**
 * `Conv2DBackpropFilter` for the wasm backend, which ships none (so CNNs
 * cannot train there). The filter gradient of an NHWC convolution
 *
 *   dW[kh,kw,ci,co] = sum_{n,ho,wo} xPad[n, ho*s+kh, wo*s+kw, ci] * dy[n,ho,wo,co]
 *
 * is itself a convolution: treat `ci` as the batch and `n` as the input
 * channels (x -> [Ci,H,W,N]), use dy as a filter dilated by the stride
 * (dy -> [Ho,Wo,N,Co]) with stride 1 and the forward pass's padding. The
 * result [Ci,kh',kw',Co] (kh' >= kh) is cropped and transposed to
 * [kh,kw,Ci,Co]. XNNPACK's convolution does the arithmetic.
 */
function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const a = attrs ?? {};
  const filterShape = a['filterShape'] as [number, number, number, number];
  const strides = a['strides'] as number | [number, number];
  const pad = a['pad'] as 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  const dataFormat = (a['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC';
  const dimRoundingMode = a['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined;
  if (dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error('Conv2DBackpropFilter (wasm): float32 only');

  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { top, bottom, left, right } = info.padInfo;
  const [kh, kw, ci, co] = filterShape;

  const xT = callKernel('Transpose', backend, { x }, { perm: [3, 1, 2, 0] });
  const dyT = callKernel('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] });
  const explicit: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
  const conv = callKernel('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth],
  });
  let full = conv;
  const temps: TensorInfo[] = [xT, dyT, conv];
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    full = callKernel('Slice', backend, { x: conv }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] });
    temps.push(full);
  }
  try {
    return callKernel('Transpose', backend, { x: full }, { perm: [1, 2, 0, 3] });
  } finally {
    dispose(backend, ...temps);
  }
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
