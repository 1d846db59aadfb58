import * as tf from '@tensorflow/tfjs';
import { StrataError } from '../common/strata-error.js';
import { installWasmKernels, type WasmKernelSet } from './wasm-kernels/index.js';

export type BackendName = 'tfjs-node' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['tfjs-node', 'wasm', 'cpu'];

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
}

export interface BackendOptions {
  /** Default `STRATA_BACKEND`, else `auto`: tfjs-node, then wasm, then cpu. */
  backend?: string | undefined;
  /** Default `strata`. `stock` leaves tfjs's own wasm kernels alone (benchmark baselines). */
  wasmKernels?: WasmKernelSet;
}

let active: BackendInfo | undefined;

export function parseBackendRequest(value: string | undefined, source = '--backend'): BackendRequest {
  const v = (value ?? 'auto').trim().toLowerCase();
  if (v === 'auto' || v === '') return 'auto';
  if (v === 'tfjs-node' || v === 'node' || v === 'tensorflow') return 'tfjs-node';
  if (v === 'wasm' || v === 'cpu') return v;
  throw new StrataError('STRATA_ERR_BAD_FLAG', `${source}: unknown backend '${value}' (expected auto, tfjs-node, wasm or cpu)`, { flag: source, value });
}

async function tryTfjsNode(): Promise<string | undefined> {
  try {
    const mod = '@tensorflow/tfjs-node';
    await import(mod);
    if (!(await tf.setBackend('tensorflow'))) return 'tensorflow backend failed to initialise';
    return undefined;
  } catch (err) {
    return `not installed or failed to load (${(err as Error).message.split('\n')[0]})`;
  }
}

async function tryWasm(kernels: WasmKernelSet): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (kernels === 'strata') installWasmKernels();
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
    options.backend !== undefined ? '--backend' : 'STRATA_BACKEND');
  const kernels = options.wasmKernels ?? 'strata';
  if (active !== undefined) {
    if (requested !== 'auto' && requested !== active.name) {
      throw new StrataError('STRATA_ERR_BACKEND', `backend ${active.name} already initialised; cannot switch to ${requested}`);
    }
    return active;
  }
  const order: BackendName[] = requested === 'auto' ? [...BACKEND_NAMES] : [requested];
  const fallbacks: BackendInfo['fallbacks'] = [];
  for (const name of order) {
    let reason: string | undefined;
    if (name === 'tfjs-node') reason = await tryTfjsNode();
    else if (name === 'wasm') reason = await tryWasm(kernels);
    else reason = (await tf.setBackend('cpu')) ? undefined : 'cpu backend failed to initialise';
    if (reason === undefined) {
      await tf.ready();
      active = {
        name, requested, fallbacks, tfjsVersion: tf.version.tfjs,
        kernels: name === 'wasm' ? kernels : name === 'cpu' ? 'stock' : 'native',
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
