import * as tf from '@tensorflow/tfjs';
import { StrataError, badValue } from '../common/strata-error.js';
import { autoTrainingThreads, parseThreadsRequest, type ThreadsRequest } from './threads.js';
import { installWasmKernels, type WasmKernelSet } from './wasm-kernels/index.js';
import { registerThreadedWasm, wasmThreadsInUse } from './wasm-threads/threaded-wasm.js';

import { BACKEND_NAMES, parseBackendRequest, type BackendName, type BackendRequest } from './backend-request.js';

export { BACKEND_NAMES, parseBackendRequest, type BackendName, type BackendRequest };

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
}

let active: BackendInfo | undefined;


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

async function tryWasm(kernels: WasmKernelSet, threads: number, notes: string[]): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (kernels === 'strata') installWasmKernels();
    let restore: (() => void) | undefined;
    if (threads > 1) {
      try {
        restore = registerThreadedWasm(threads);
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
    else if (name === 'wasm') reason = await tryWasm(kernels, threads, notes);
    else reason = (await tf.setBackend('cpu')) ? undefined : 'cpu backend failed to initialise';
    if (reason === undefined) {
      await tf.ready();
      const running = name === 'wasm' ? wasmThreadsInUse() : name === 'cpu' ? 1 : threads;
      if (running < threads && notes.length === 0) notes.push(name === 'cpu' ? 'the cpu backend runs on one thread' : `${running} of ${threads} threads started`);
      if (auto?.note !== undefined && running === auto.threads) notes.unshift(auto.note);
      active = {
        name, requested, fallbacks, tfjsVersion: tf.version.tfjs,
        kernels: name === 'wasm' ? kernels : name === 'cpu' ? 'stock' : 'native',
        threads: running, threadsRequested, ...(notes.length > 0 ? { threadsNote: notes.join('; ') } : {}),
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
