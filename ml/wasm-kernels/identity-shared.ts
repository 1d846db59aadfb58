import * as tf from '@tensorflow/tfjs';
import type { KernelArgs, TensorInfo } from './kernel-call.js';

/**
 * `Identity` that shares the input's memory (one more reference) instead of
 * copying it, as tfjs's cpu backend does. tfjs's autograd clones every
 * tensor it saves for the backward pass, so on the stock wasm kernel each
 * training step copied every activation (on the CNN, ~15% of a step).
 * Tensors are immutable in tfjs, so sharing is safe.
 */
export function wrapIdentity(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const x = args.inputs['x'] as TensorInfo;
    if (x.dtype === 'string') return original.kernelFunc(args) as TensorInfo;
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { ...original, kernelFunc: kernelFunc as tf.KernelFunc };
}
