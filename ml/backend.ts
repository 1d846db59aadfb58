import * as tf from '@tensorflow/tfjs';
import { StrataError, badValue } from '../common/strata-error.js';
import { HelperPool } from './data-parallel/helper-pool.js';
import type { HeapMemory } from './wasm-simd/simd-kernels.js';
import { autoTrainingThreads, parseThreadsRequest, type ThreadsRequest } from './threads.js';
import { installWasmKernels, type WasmKernelSet } from './wasm-kernels/index.js';
import { registerThreadedWasm, wasmThreadsInUse } from './wasm-threads/threaded-wasm.js';

import { BACKEND_NAMES, parseBackendRequest, type BackendName, type BackendRequest } from './backend-request.js';

export { BACKEND_NAMES, parseBackendRequest, type BackendName, type BackendRequest };

/**
 * How several training threads share a step: `data`, by rows of the batch
 * (each thread its own single-threaded wasm engine, gradients summed: see
 * `DataParallelStep`); `intra-op`, inside each kernel (XNNPACK's pool on
 * tfjs's threaded wasm build, TensorFlow's on tfjs-node); `none` on one thread.
 */
export type Parallelism = 'none' | 'data' | 'intra-op';

export interface BackendInfo {
  /** Which backend runs: `tfjs-node` (native TensorFlow), `wasm` or `cpu`. */
  name: BackendName;
  /** How it was chosen. */
  requested: BackendRequest;
  /** For wasm: whether Strata's kernels are installed (`stock` for baselines). */
  kernels: WasmKernelSet | 'native';
  /** Backends tried before this one, with why they were passed over. */
  fallbacks: { name: BackendName; reason: string }[];
  tfjsVersion: string;
  /**
   * Threads that train: on wasm, XNNPACK's pool (1 = the single-threaded
   * SIMD build, more = the threaded SIMD build on worker threads); 1 on
   * cpu; on tfjs-node, TensorFlow's intra-op pool as requested.
   */
  threads: number;
  /** How the thread count was asked for (`auto` or a number). */
  threadsRequested: ThreadsRequest;
  /** Why fewer threads run than were asked for (or, for `auto`, than there are cores), if so. */
  threadsNote?: string;
  /**
   * How the threads share a step. On wasm with `data`, models the fast step
   * runs (Dense/Conv2D/MaxPooling2D chains) train on every thread and
   * others on the main thread alone.
   */
  parallelism: Parallelism;
}

export interface BackendOptions {
  /** Default `STRATA_BACKEND`, else `auto`: tfjs-node, then wasm, then cpu. */
  backend?: string | undefined;
  /** Default `strata`. `stock` leaves tfjs's own wasm kernels alone (benchmark baselines). */
  wasmKernels?: WasmKernelSet;
  /**
   * Training threads. Default `STRATA_THREADS`, else `auto`:
   * `autoTrainingThreads()` (on the main thread, the cores this process may
   * use less those the machine is already busy with; 1 inside a worker
   * thread). `1` gives exactly one training thread (wasm: the
   * single-threaded build, no pthread workers at all).
   */
  threads?: ThreadsRequest | string;
  /**
   * With `threads: 'auto'`: other threads this process keeps busy while it
   * trains (a CarM swap worker decoding samples), left their cores. Default 0.
   */
  busyThreads?: number;
  /**
   * On wasm with more than one thread: `data` (default; `STRATA_PARALLELISM`)
   * or `intra-op` (XNNPACK's pool on the threaded build). On the 2-core
   * bench machine, two data-parallel threads trained the built-in MLP
   * 1.05-1.5x and the CNN 1.4-1.8x as fast as one, XNNPACK's pool 1.0x and
   * 1.3x (see `DataParallelStep`). Both need the cores free: a thread
   * another process delays stalls every step, which is why `threads: 'auto'`
   * leaves out the cores the machine is busy with.
   */
  parallelism?: 'data' | 'intra-op' | string;
}

let active: BackendInfo | undefined;
let helpers: HelperPool | undefined;

function parseParallelism(value: string | undefined, source: string): 'data' | 'intra-op' {
  const v = (value ?? 'data').trim().toLowerCase();
  if (v === 'data' || v === '') return 'data';
  if (v === 'intra-op') return 'intra-op';
  throw badValue(source, `unknown parallelism '${value}' (expected data or intra-op)`, { value });
}


async function tryTfjsNode(threads: number): Promise<string | undefined> {
  try {
    // TensorFlow sizes its intra-op pool from this when the library loads.
    process.env['TF_NUM_INTRAOP_THREADS'] ??= String(threads);
    const mod = '@tensorflow/tfjs-node';
    await import(mod);
    if (!(await tf.setBackend('tensorflow'))) return 'tensorflow backend failed to initialise';
    return undefined;
  } catch (err) {
    return `not installed or failed to load (${(err as Error).message.split('\n')[0]})`;
  }
}

/**
 * `threads`: XNNPACK's pool of `threads` on the threaded build (the plain
 * build for 1); `shared`: the threaded build on one XNNPACK thread, for its
 * shared heap (data-parallel helpers work on it).
 */
async function tryWasm(kernels: WasmKernelSet, threads: number, build: 'threads' | 'shared', notes: string[]): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (kernels === 'strata') installWasmKernels();
    let restore: (() => void) | undefined;
    if (threads > 1) {
      try {
        restore = registerThreadedWasm(build === 'shared' ? 1 : threads);
      } catch (err) {
        notes.push(`threaded wasm build not started: ${(err as Error).message}`);
      }
    }
    if (await tf.setBackend('wasm')) return undefined;
    if (restore === undefined) return 'wasm backend failed to initialise';
    notes.push('threaded wasm build failed to start; running single-threaded');
    restore();
    if (!(await tf.setBackend('wasm'))) return 'wasm backend failed to initialise';
    return undefined;
  } catch (err) {
    return `failed to load (${(err as Error).message.split('\n')[0]})`;
  }
}

/**
 * Picks and initialises the tfjs backend once per process: tfjs-node if it
 * loads, else wasm, else the pure-JS cpu backend. An explicitly requested
 * backend that cannot start is an error, not a silent fallback.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const requested = parseBackendRequest(options.backend ?? process.env['STRATA_BACKEND'],
    options.backend !== undefined ? 'backend' : 'STRATA_BACKEND');
  const threadsRequested = parseThreadsRequest(options.threads ?? process.env['STRATA_THREADS'],
    options.threads !== undefined ? 'threads' : 'STRATA_THREADS');
  const kernels = options.wasmKernels ?? 'strata';
  const parallelism = parseParallelism(options.parallelism ?? process.env['STRATA_PARALLELISM'],
    options.parallelism !== undefined ? 'parallelism' : 'STRATA_PARALLELISM');
  if (active !== undefined) {
    if (requested !== 'auto' && requested !== active.name) {
      throw new StrataError('STRATA_ERR_BACKEND', `backend ${active.name} already initialised; cannot switch to ${requested}`);
    }
    if (threadsRequested !== 'auto' && active.name === 'wasm' && threadsRequested !== active.threads && active.threadsNote === undefined) {
      throw new StrataError('STRATA_ERR_BACKEND', `backend already initialised with ${active.threads} training thread(s); cannot switch to ${threadsRequested}`);
    }
    return active;
  }
  const auto = threadsRequested === 'auto' ? autoTrainingThreads({ busyThreads: options.busyThreads ?? 0 }) : undefined;
  const threads = auto?.threads ?? (threadsRequested as number);
  const order: BackendName[] = requested === 'auto' ? [...BACKEND_NAMES] : [requested];
  const fallbacks: BackendInfo['fallbacks'] = [];
  for (const name of order) {
    let reason: string | undefined;
    const notes: string[] = [];
    if (name === 'tfjs-node') reason = await tryTfjsNode(threads);
    else if (name === 'wasm') reason = await tryWasm(kernels, threads, parallelism === 'data' && threads > 1 ? 'shared' : 'threads', notes);
    else reason = (await tf.setBackend('cpu')) ? undefined : 'cpu backend failed to initialise';
    if (reason === undefined) {
      await tf.ready();
      let running = name === 'wasm' ? wasmThreadsInUse() : name === 'cpu' ? 1 : threads;
      let mode: Parallelism = name === 'cpu' || threads === 1 ? 'none' : 'intra-op';
      const memory = name === 'wasm' ? wasmHeapMemory() : undefined;
      if (name === 'wasm' && parallelism === 'data' && threads > 1 && notes.length === 0) {
        try {
          if (memory === undefined || !(memory.buffer instanceof SharedArrayBuffer)) throw new Error('the wasm heap is not shared');
          helpers = await HelperPool.start(threads - 1, memory);
          running = threads;
          mode = 'data';
        } catch (err) {
          notes.push((err as Error).message);
          mode = 'none';
        }
      }
      if (running < threads && notes.length === 0) notes.push(name === 'cpu' ? 'the cpu backend runs on one thread' : `${running} of ${threads} threads started`);
      if (auto?.note !== undefined && running === auto.threads) notes.unshift(auto.note);
      active = {
        name, requested, fallbacks, tfjsVersion: tf.version.tfjs,
        kernels: name === 'wasm' ? kernels : name === 'cpu' ? 'stock' : 'native',
        threads: running, threadsRequested, ...(notes.length > 0 ? { threadsNote: notes.join('; ') } : {}), parallelism: running > 1 ? mode : 'none',
      };
      return active;
    }
    fallbacks.push({ name, reason });
    if (requested !== 'auto') {
      throw new StrataError('STRATA_ERR_BACKEND_UNAVAILABLE', `backend ${name} is not available here: ${reason}`, { backend: name });
    }
  }
  throw new StrataError('STRATA_ERR_BACKEND_UNAVAILABLE', `no tfjs backend could start: ${fallbacks.map((f) => `${f.name}: ${f.reason}`).join('; ')}`);
}

export function activeBackend(): BackendInfo | undefined {
  return active;
}

function wasmHeapMemory(): HeapMemory | undefined {
  const wasm = (tf.backend() as unknown as { wasm?: { wasmMemory?: HeapMemory; asm?: { memory?: HeapMemory } } }).wasm;
  return wasm?.wasmMemory ?? wasm?.asm?.memory;
}

/** The helper threads of data-parallel training, when the backend runs them. */
export function dataParallelHelpers(): HelperPool | undefined {
  return helpers?.state === 'running' ? helpers : undefined;
}
