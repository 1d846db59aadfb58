import * as tf from '@tensorflow/tfjs';
import type { KernelArgs, TensorInfo } from './kernel-call.js';

interface HeapBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** The forward pass's geometry, as the gradient kernels receive it (NHWC; tfjs has no dilated depthwise gradient). */
function depthwiseInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>, kernel: string): tf.backend_util.Conv2DInfo {
  const dilations = attrs['dilations'] as number | [number, number] | undefined;
  if (dilations !== undefined && (Array.isArray(dilations) ? dilations.some((d) => d !== 1) : dilations !== 1)) {
    throw new Error(`${kernel} (wasm): dilations other than 1 are not supported`);
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number], attrs['strides'] as number | [number, number], 1,
    attrs['pad'] as Pad, attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined, true, 'channelsLast');
}

/**
 * Every (output position, filter tap) pair that lands inside the input:
 * `visit(gBase, xBase, wBase)` with the first float of dy at the output
 * position, of the input at the tap, and of the filter at the tap
 * (channels, and M multipliers per channel, follow contiguously).
 */
function forEachTap(info: tf.backend_util.Conv2DInfo, M: number, visit: (gBase: number, xBase: number, wBase: number) => void): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw, filterHeight: KH, filterWidth: KW } = info;
  const { top, left } = info.padInfo;
  const CM = C * M;
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const gBase = ((n * OH + oy) * OW + ox) * CM;
        for (let kh = 0; kh < KH; kh++) {
          const iy = oy * sh + kh - top;
          if (iy < 0 || iy >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const ix = ox * sw + kw - left;
            if (ix < 0 || ix >= W) continue;
            visit(gBase, ((n * H + iy) * W + ix) * C, (kh * KW + kw) * CM);
          }
        }
      }
    }
  }
}

/**
 * `DepthwiseConv2dNativeBackpropFilter` for the wasm backend, which ships
 * none (so DepthwiseConv2D and SeparableConv2D cannot train there):
 *
 *   dW[kh,kw,c,m] = sum_{n,oy,ox} x[n, oy*sh+kh-top, ox*sw+kw-left, c] * dy[n,oy,ox,c*M+m]
 *
 * A direct loop over the wasm heap, one multiply-add per forward one
 * (depthwise layers are a small share of a model's arithmetic, and a GEMM
 * formulation has nothing to batch over). Channel-innermost, so every
 * inner loop walks contiguous memory.
 */
function depthwiseBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as unknown as HeapBackend;
  const x = args.inputs['x'] as TensorInfo;
  const dy = args.inputs['dy'] as TensorInfo;
  const a = (args.attrs ?? {}) as Record<string, unknown>;
  const filterShape = a['filterShape'] as [number, number, number, number];
  const info = depthwiseInfo(x.shape, filterShape, a, 'DepthwiseConv2dNativeBackpropFilter');
  const C = info.inChannels;
  const M = filterShape[3];
  const out = backend.makeOutput(filterShape, 'float32');
  // Views only after every allocation: growing the heap detaches old views.
  const dw = backend.typedArrayFromHeap(out);
  const xv = backend.typedArrayFromHeap(x);
  const g = backend.typedArrayFromHeap(dy);
  dw.fill(0);
  forEachTap(info, M, (gBase, xBase, wBase) => {
    if (M === 1) {
      for (let c = 0; c < C; c++) dw[wBase + c] = dw[wBase + c]! + xv[xBase + c]! * g[gBase + c]!;
      return;
    }
    for (let c = 0; c < C; c++) {
      const v = xv[xBase + c]!;
      const o = c * M;
      for (let m = 0; m < M; m++) dw[wBase + o + m] = dw[wBase + o + m]! + v * g[gBase + o + m]!;
    }
  });
  return out;
}

/**
 * `DepthwiseConv2dNativeBackpropInput` for the wasm backend (also missing):
 * each output position scatters dy back through the filter taps,
 *
 *   dx[n, oy*sh+kh-top, ox*sw+kw-left, c] += sum_m dy[n,oy,ox,c*M+m] * W[kh,kw,c,m]
 */
function depthwiseBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as unknown as HeapBackend;
  const dy = args.inputs['dy'] as TensorInfo;
  const filter = args.inputs['filter'] as TensorInfo;
  const a = (args.attrs ?? {}) as Record<string, unknown>;
  const inputShape = a['inputShape'] as [number, number, number, number];
  const info = depthwiseInfo(inputShape, filter.shape, a, 'DepthwiseConv2dNativeBackpropInput');
  const C = info.inChannels;
  const M = filter.shape[3]!;
  const out = backend.makeOutput(inputShape, 'float32');
  const dx = backend.typedArrayFromHeap(out);
  const wv = backend.typedArrayFromHeap(filter);
  const g = backend.typedArrayFromHeap(dy);
  dx.fill(0);
  forEachTap(info, M, (gBase, xBase, wBase) => {
    if (M === 1) {
      for (let c = 0; c < C; c++) dx[xBase + c] = dx[xBase + c]! + g[gBase + c]! * wv[wBase + c]!;
      return;
    }
    for (let c = 0; c < C; c++) {
      const o = c * M;
      let s = 0;
      for (let m = 0; m < M; m++) s += g[gBase + o + m]! * wv[wBase + o + m]!;
      dx[xBase + c] = dx[xBase + c]! + s;
    }
  });
  return out;
}

export const depthwiseConv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};

export const depthwiseConv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc,
};
