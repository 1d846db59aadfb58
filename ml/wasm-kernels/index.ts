import * as tf from '@tensorflow/tfjs';
import { wrapBatchMatMul } from './batch-matmul-untransposed.js';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { wrapConv2DBackpropInput } from './conv2d-backprop-input.js';
import { depthwiseConv2dBackpropFilterConfig, depthwiseConv2dBackpropInputConfig } from './depthwise-conv2d-backprop.js';
import { wrapIdentity } from './identity-shared.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { wrapTile } from './tile.js';

export type WasmKernelSet = 'strata' | 'stock';

let installed = false;

/**
 * Registers Strata's wasm kernels: the missing `Conv2DBackpropFilter`, the
 * `BatchMatMul` wrapper that avoids the slow transposed path, a stride-1
 * `Conv2DBackpropInput` on XNNPACK's convolution, a faster `MaxPoolGrad`,
 * an `Identity` that shares memory instead of copying it, and the missing
 * depthwise-convolution gradients (DepthwiseConv2D, SeparableConv2D), and a
 * `Tile` by block copies (batch norm's gradient tiles every step). Call
 * before the wasm backend initialises. Idempotent.
 */
export function installWasmKernels(): void {
  if (installed) return;
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (original === undefined) throw new Error('the wasm backend is not loaded');
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel(wrapBatchMatMul(original));
  if (tf.getKernel(tf.Conv2DBackpropFilter, 'wasm') === undefined) tf.registerKernel(conv2DBackpropFilterConfig);
  for (const config of [depthwiseConv2dBackpropFilterConfig, depthwiseConv2dBackpropInputConfig]) {
    if (tf.getKernel(config.kernelName, 'wasm') === undefined) tf.registerKernel(config);
  }
  const backpropInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  if (backpropInput !== undefined) {
    tf.unregisterKernel(tf.Conv2DBackpropInput, 'wasm');
    tf.registerKernel(wrapConv2DBackpropInput(backpropInput));
  }
  tf.unregisterKernel(tf.MaxPoolGrad, 'wasm');
  tf.registerKernel(maxPoolGradConfig);
  const tile = tf.getKernel(tf.Tile, 'wasm');
  if (tile !== undefined) {
    tf.unregisterKernel(tf.Tile, 'wasm');
    tf.registerKernel(wrapTile(tile));
  }
  const identity = tf.getKernel(tf.Identity, 'wasm');
  if (identity !== undefined) {
    tf.unregisterKernel(tf.Identity, 'wasm');
    tf.registerKernel(wrapIdentity(identity));
  }
  installed = true;
}

export function wasmKernelsInstalled(): boolean {
  return installed;
}
