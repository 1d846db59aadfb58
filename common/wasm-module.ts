/**
 * Compiling and instantiating Strata's own WebAssembly kernels (the
 * training loops on tfjs's heap, the coordinator's intake vectors, the
 * weight-frame checksum, secure aggregation's field loops), through the slice of the WebAssembly API they use:
 * this project type-checks against Node's lib, which has no WebAssembly
 * types. Where a module cannot run (no WebAssembly, no SIMD, or
 * `STRATA_WASM_SIMD_KERNELS=0`) callers keep their JavaScript loops.
 */

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** A compiled module (opaque). */
export type WasmModule = object;

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
}

/** Bytes in a WebAssembly memory page. */
export const WASM_PAGE = 65536;

const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Whether Strata's own kernels may run at all: `STRATA_WASM_SIMD_KERNELS=0` turns every one of them off. */
export function strataKernelsEnabled(): boolean {
  return process.env['STRATA_WASM_SIMD_KERNELS'] !== '0';
}

/** `bytes` compiled, or null where this runtime cannot run them (or Strata's kernels are turned off). */
export function compileWasm(bytes: Uint8Array): WasmModule | null {
  if (!strataKernelsEnabled() || api === undefined) return null;
  try {
    return api.validate(bytes) ? new api.Module(bytes) : null;
  } catch {
    return null;
  }
}

/** A new instance of `module`, its exports as `E` (throws what WebAssembly throws, e.g. a memory import whose limits do not fit). */
export function instantiateWasm<E>(module: WasmModule, imports: object = {}): E {
  return new api!.Instance(module, imports).exports as E;
}

/**
 * One of Strata's kernel modules that owns its memory (the checksum, the
 * field's loops): `base64` compiled and instantiated, its memory grown to
 * hold `bytes` more, and its exports, memory included; or null where it
 * cannot run. Callers keep the result (one instance per process).
 */
export function ownMemoryKernel<E>(base64: string, bytes: number): (E & { memory: WasmMemory }) | null {
  const module = compileWasm(Buffer.from(base64, 'base64'));
  if (module === null) return null;
  const e = instantiateWasm<E & { memory: WasmMemory }>(module);
  e.memory.grow(Math.ceil(bytes / WASM_PAGE));
  return e;
}
