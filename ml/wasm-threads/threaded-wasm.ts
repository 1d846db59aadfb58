import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../../common/strata-error.js';

const require = createRequire(import.meta.url);

/** The slice of `@tensorflow/tfjs-backend-wasm` this loader uses. */
interface WasmPackage {
  BackendWasm: new (module: unknown) => tf.KernelBackend;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => unknown;
  PThread?: { runningWorkers: { unref(): void }[]; unusedWorkers: { unref(): void }[] };
  tfjs?: object;
}

type ModuleFactory = (config: object) => Promise<EmscriptenModule>;

/** XNNPACK's pool is capped at 8 threads in tfjs's C++ (`max_num_threads`). */
export const MAX_WASM_THREADS = 8;

function wasmOutDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
}

/** The compiled pthread worker script: beside this file in dist/, or dist/'s copy when running from source (vitest). */
function pthreadWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const beside = path.join(path.dirname(here), 'pthread-worker.cjs');
  if (existsSync(beside)) return beside;
  let dir = path.dirname(here);
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const built = path.join(dir, 'dist', path.relative(dir, path.dirname(here)), 'pthread-worker.cjs');
  if (!existsSync(built)) throw new StrataError('STRATA_ERR_BACKEND', `threaded wasm: ${built} is missing (run npm run build)`);
  return built;
}

/**
 * Patches tfjs's emscripten glue for Node, where tfjs itself never starts
 * the threaded build: it sizes the pre-started pthread pool to the threads
 * XNNPACK will use (tfjs starts 8 workers, each a V8 isolate), and reports
 * `2 * threads` logical cores (tfjs's C++ halves that, guessing SMT, and
 * caps the pool at the result). Fails loudly if the glue changed.
 */
function patchedFactory(threads: number): ModuleFactory {
  const file = path.join(wasmOutDir(), 'tfjs-backend-wasm-threaded-simd.js');
  let src = readFileSync(file, 'utf8');
  const patches: [string, string][] = [
    // At least one pre-started worker: with none, the module never finishes starting on Node.
    ['var pthreadPoolSize=8;', `var pthreadPoolSize=${Math.max(1, threads - 1)};`],
    ['function _emscripten_num_logical_cores(){if(ENVIRONMENT_IS_NODE)return require("os").cpus().length;',
      `function _emscripten_num_logical_cores(){if(ENVIRONMENT_IS_NODE)return ${2 * threads};`],
  ];
  for (const [from, to] of patches) {
    if (src.split(from).length !== 2) {
      throw new StrataError('STRATA_ERR_BACKEND', `threaded wasm: unexpected emscripten glue in ${file} (looked for '${from.slice(0, 40)}...')`);
    }
    src = src.replace(from, to);
  }
  const wrapper = vm.runInThisContext(`(function (require, module, exports, __filename, __dirname) {${src}\n})`, { filename: file }) as
    (r: NodeRequire, m: { exports: unknown }, e: unknown, f: string, d: string) => void;
  const mod = { exports: {} as unknown };
  wrapper(createRequire(file), mod, mod.exports, file, path.dirname(file));
  return mod.exports as ModuleFactory;
}

/**
 * Replaces the registered `wasm` backend factory with one that starts
 * tfjs's threaded SIMD build with `threads` XNNPACK threads (emscripten
 * pthreads on Node worker threads). With `threads` 1 kernels run on the
 * calling thread alone, on a shared heap that data-parallel helper
 * threads read and write. Call before `tf.setBackend('wasm')`.
 * Returns a function that restores tfjs's own factory (for a fallback).
 */
export function registerThreadedWasm(threads: number): () => void {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new StrataError('STRATA_ERR_BAD_OPTION', `threaded wasm: threads must be an integer in 1..${MAX_WASM_THREADS}, got ${threads}`, { option: 'threads' });
  }
  const pkg = require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
  const original = tf.findBackendFactory('wasm');
  if (original === null) throw new StrataError('STRATA_ERR_BACKEND', 'threaded wasm: the wasm backend is not loaded');
  const factory = patchedFactory(threads);
  const out = wasmOutDir();
  const workerFile = pthreadWorkerFile();
  const mainScript = path.join(out, 'tfjs-backend-wasm-threaded-simd.js');
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', async () => {
    const before = { exception: process.listeners('uncaughtException'), rejection: process.listeners('unhandledRejection') };
    const module = await factory({
      locateFile: (file: string) => (file.endsWith('.worker.js') ? workerFile : path.join(out, file)),
      // Each pthread evaluates the (unpatched) glue from disk; the pool size and core count only matter here.
      mainScriptUrlOrBlob: mainScript,
    });
    // The glue's handlers rethrow every uncaught error from inside itself,
    // so Node would print its one 60 kB line of minified source as the
    // error's location; without them, Node reports the error where it was thrown.
    for (const l of process.listeners('uncaughtException')) if (!before.exception.includes(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.rejection.includes(l)) process.removeListener('unhandledRejection', l);
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    pkg.setThreadsCount(threads);
    const backend = new pkg.BackendWasm(module);
    // XNNPACK's pool threads live as long as the process; unref their
    // workers so they never keep Node from exiting.
    for (const w of [...(module.PThread?.runningWorkers ?? []), ...(module.PThread?.unusedWorkers ?? [])]) w.unref();
    return backend;
  }, 2);
  return () => {
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', original, 2);
  };
}

/** Threads XNNPACK runs with on the active wasm backend (1 on the single-threaded build). */
export function wasmThreadsInUse(): number {
  const pkg = require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
  try {
    return pkg.getThreadsCount();
  } catch {
    return 1;
  }
}
