import * as tf from '@tensorflow/tfjs';
import { backendSimdKernels } from '../wasm-simd/simd-kernels.js';
import { callKernel, dispose, type KernelArgs, type TensorInfo } from './kernel-call.js';

/** The inputs and the forward pass's geometry, as every formulation below reads them (NHWC, float32). */
function filterGradArgs(args: KernelArgs): { x: TensorInfo; dy: TensorInfo; filterShape: [number, number, number, number]; info: tf.backend_util.Conv2DInfo } {
  const x = args.inputs['x'] as TensorInfo;
  const dy = args.inputs['dy'] as TensorInfo;
  const a = args.attrs ?? {};
  const filterShape = a['filterShape'] as [number, number, number, number];
  if (((a['dataFormat'] as string | undefined) ?? 'NHWC') !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error('Conv2DBackpropFilter (wasm): float32 only');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, a['strides'] as number | [number, number], 1,
    a['pad'] as 'valid' | 'same' | number | tf.backend_util.ExplicitPadding, a['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined, false, 'channelsLast');
  return { x, dy, filterShape, info };
}

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
export function conv2DBackpropFilterConv(args: KernelArgs): TensorInfo {
  const { backend } = args;
  const { x, dy, filterShape, info } = filterGradArgs(args);
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

interface HeapBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/**
 * The same gradient as one matrix product: patches^T [kh*kw*Ci, N*Ho*Wo]
 * (im2col, built by a JS loop straight into the wasm heap) times dy
 * [N*Ho*Wo, Co] on XNNPACK's untransposed GEMM. Faster than the dilated
 * convolution above when dy's spatial extent is large (XNNPACK handles a
 * 14x14 dilated filter poorly); both are checked against the cpu backend.
 */
export function conv2DBackpropFilterIm2col(args: KernelArgs): TensorInfo {
  const backend = args.backend as unknown as HeapBackend;
  const { x, dy, filterShape, info } = filterGradArgs(args);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw } = info;
  const [KH, KW, , CO] = filterShape;
  const { top, left } = info.padInfo;
  const P = N * OH * OW;
  const R = KH * KW * C;
  const patches = backend.makeOutput([R, P], 'float32');
  const pt = backend.typedArrayFromHeap(patches);
  const xv = backend.typedArrayFromHeap(x);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      for (let c = 0; c < C; c++) {
        const rowBase = ((kh * KW + kw) * C + c) * P;
        let col = 0;
        for (let n = 0; n < N; n++) {
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * sh + kh - top;
            if (ih < 0 || ih >= H) {
              pt.fill(0, rowBase + col, rowBase + col + OW);
              col += OW;
              continue;
            }
            const xRow = (n * H + ih) * W;
            for (let ow = 0; ow < OW; ow++, col++) {
              const iw = ow * sw + kw - left;
              pt[rowBase + col] = iw >= 0 && iw < W ? xv[(xRow + iw) * C + c]! : 0;
            }
          }
        }
      }
    }
  }
  const dy2 = callKernel('Reshape', args.backend, { x: dy }, { shape: [P, CO] });
  try {
    const prod = callKernel('BatchMatMul', args.backend, { a: patches, b: dy2 }, { transposeA: false, transposeB: false });
    try {
      return callKernel('Reshape', args.backend, { x: prod }, { shape: [KH, KW, C, CO] });
    } finally {
      dispose(args.backend, prod);
    }
  } finally {
    dispose(args.backend, patches, dy2);
  }
}

/**
 * The same gradient by direct accumulation (kernels.wat `convFilterGrad`):
 * each input value times dy's output channels, 4 at a time, into dW. No
 * patches and no packing of dy, which the GEMM needs and which costs more
 * than the arithmetic when the input has few channels (conv1 of the MNIST
 * CNN). Needs Strata's SIMD kernels and Co a multiple of 4.
 */
export function conv2DBackpropFilterDirect(args: KernelArgs): TensorInfo {
  const simd = backendSimdKernels();
  const backend = args.backend as unknown as HeapBackend;
  const { x, dy, filterShape, info } = filterGradArgs(args);
  if (simd === undefined || filterShape[3] % 4 !== 0) return conv2DBackpropFilterIm2col(args);
  const out = backend.makeOutput(filterShape, 'float32');
  const geo = backend.makeOutput([13], 'float32');
  try {
    const ov = backend.typedArrayFromHeap(out);
    ov.fill(0);
    const gv = backend.typedArrayFromHeap(geo);
    new Int32Array(gv.buffer, gv.byteOffset, 13).set([
      info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
      filterShape[0], filterShape[1], filterShape[3], info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left,
    ]);
    simd.convFilterGrad(backend.typedArrayFromHeap(x).byteOffset, backend.typedArrayFromHeap(dy).byteOffset, ov.byteOffset, gv.byteOffset);
    return out;
  } finally {
    dispose(args.backend, geo);
  }
}

/** Columns of patches^T (rows of dy) per GEMM call: a block of dy (256 x Co floats) stays in L2 across the rows of patches^T. */
const FILTER_GEMM_BLOCK = 256;

/**
 * The same gradient as one GEMM, dW [R, Co] = patches^T [R, P] x dy [P, Co],
 * with patches^T built in wasm: the input transposed to channel planes
 * with the padding around them (kernels.wat `padTranspose`), then each
 * row's runs copied whole (`im2rowsT`). Strata's SIMD GEMM reads both in
 * place, in blocks of P (XNNPACK's packed dy, 4-7 ns a float, cost 6 ms of
 * conv2's ~21 ms in the MNIST CNN). Stride 1 only (other strides take the
 * dilated convolution).
 */
export function conv2DBackpropFilterRows(args: KernelArgs): TensorInfo {
  const simd = backendSimdKernels();
  const backend = args.backend as unknown as HeapBackend;
  const { x, dy, filterShape, info } = filterGradArgs(args);
  if (simd === undefined || info.strideHeight !== 1 || info.strideWidth !== 1) return conv2DBackpropFilterConv(args);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const [KH, KW, , CO] = filterShape;
  const { top, left } = info.padInfo;
  const hp = Math.max(OH + KH - 1, top + H);
  const wp = Math.max(OW + KW - 1, left + W);
  const P = N * OH * OW;
  const R = KH * KW * C;
  // 4 floats of slack after both: im2rowsT copies runs 4 floats at a time.
  const xt = backend.makeOutput([C * N * hp * wp + 4], 'float32');
  const patches = backend.makeOutput([R * P + 4], 'float32');
  const geo = backend.makeOutput([18], 'float32');
  try {
    // Views after the allocations (heap growth detaches views).
    const xv = backend.typedArrayFromHeap(xt);
    xv.fill(0);
    const gv = backend.typedArrayFromHeap(geo);
    new Int32Array(gv.buffer, gv.byteOffset, 18).set([N, H, W, C, top, left, hp, wp, N, C, hp, wp, OH, OW, KH, KW, 0, N]);
    simd.padTranspose(backend.typedArrayFromHeap(x).byteOffset, xv.byteOffset, gv.byteOffset);
    simd.im2rowsT(xv.byteOffset, backend.typedArrayFromHeap(patches).byteOffset, gv.byteOffset + 32);
    const out = backend.makeOutput([KH, KW, C, CO], 'float32');
    const pa = backend.typedArrayFromHeap(patches).byteOffset;
    const pd = backend.typedArrayFromHeap(dy).byteOffset;
    const po = backend.typedArrayFromHeap(out).byteOffset;
    for (let k0 = 0; k0 < P; k0 += FILTER_GEMM_BLOCK) {
      simd.gemm(pa + 4 * k0, pd + 4 * k0 * CO, po, R, Math.min(FILTER_GEMM_BLOCK, P - k0), CO, P, CO, CO, k0 > 0 ? 2 : 0);
    }
    return out;
  } finally {
    dispose(args.backend, xt, patches, geo);
  }
}

/**
 * Picks the faster formulation by input channels: with few channels the
 * dilated convolution's batch (Ci) is tiny and XNNPACK runs it poorly
 * (conv1 of the MNIST CNN, Ci = 1: direct accumulation is ~2.5x faster
 * than im2col, ~4x than the convolution); with many, one GEMM on patches
 * built in wasm (conv2, Ci = 32: ~8% faster than the dilated convolution,
 * which stride > 1 still takes).
 */
export function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const x = args.inputs['x'] as TensorInfo;
  return (x.shape[3] ?? 0) < 8 ? conv2DBackpropFilterDirect(args) : conv2DBackpropFilterRows(args);
}

/** `STRATA_WASM_FILTER_GRAD=conv|im2col|direct|rows` forces one formulation (for comparison); the default picks by channels. */
const formulation = process.env['STRATA_WASM_FILTER_GRAD'];
const forced = { conv: conv2DBackpropFilterConv, im2col: conv2DBackpropFilterIm2col, direct: conv2DBackpropFilterDirect, rows: conv2DBackpropFilterRows }[formulation ?? ''];

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: (forced ?? conv2DBackpropFilter) as unknown as tf.KernelFunc,
};
