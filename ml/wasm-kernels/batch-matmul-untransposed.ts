import * as tf from '@tensorflow/tfjs';
import { callKernel, dispose, swapLastTwo, type KernelArgs, type TensorInfo } from './kernel-call.js';

/**
 * The stock wasm `BatchMatMul` runs its XNNPACK fast path only when neither
 * operand is transposed; with `transposeA`/`transposeB` (every backward pass
 * of a dense layer) it falls to a naive loop ~13x slower. Transposing the
 * operand explicitly (an O(n) copy) and calling the untransposed path is far
 * cheaper than the O(n^1.5) slow product, so this wrapper does exactly that.
 */
export function wrapBatchMatMul(original: tf.KernelConfig): tf.KernelConfig {
  const run = original.kernelFunc;
  const kernelFunc = (args: KernelArgs): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const transposeA = Boolean(attrs?.['transposeA']);
    const transposeB = Boolean(attrs?.['transposeB']);
    if (!transposeA && !transposeB) return run(args) as TensorInfo;
    let a = inputs['a'] as TensorInfo;
    let b = inputs['b'] as TensorInfo;
    const temps: TensorInfo[] = [];
    if (transposeA) {
      a = callKernel('Transpose', backend, { x: a }, { perm: swapLastTwo(a.shape.length) });
      temps.push(a);
    }
    if (transposeB) {
      b = callKernel('Transpose', backend, { x: b }, { perm: swapLastTwo(b.shape.length) });
      temps.push(b);
    }
    try {
      return run({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } }) as TensorInfo;
    } finally {
      dispose(backend, ...temps);
    }
  };
  return { ...original, kernelFunc: kernelFunc as tf.KernelFunc };
}
