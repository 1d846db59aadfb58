import * as tf from '@tensorflow/tfjs';

/** A kernel's inputs/attrs as the registry passes them. */
export type KernelArgs = Parameters<tf.KernelFunc>[0];
export type TensorInfo = tf.TensorInfo;

/** The narrow slice of the wasm backend our kernels touch. */
export interface WasmBackendSlice {
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * Calls another registered wasm kernel directly (no op-level checks, no
 * autograd tape), as tfjs's own wasm kernels do with their helpers.
 */
export function callKernel(
  name: string,
  backend: unknown,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown> = {},
): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  const out = kernel.kernelFunc({ inputs, backend: backend as tf.KernelBackend, attrs: attrs as tf.NamedAttrMap });
  if (Array.isArray(out)) throw new Error(`wasm kernel ${name} returned several outputs`);
  return out;
}

export function dispose(backend: unknown, ...infos: TensorInfo[]): void {
  const b = backend as WasmBackendSlice;
  for (const info of infos) b.disposeData(info.dataId);
}

/** Permutation that swaps the last two axes of a rank-r tensor. */
export function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}
