import { badValue } from '../common/strata-error.js';

/** The backend names and their parser, without loading tfjs (the CLI checks `--backend` with it). */
export type BackendName = 'tfjs-node' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['tfjs-node', 'wasm', 'cpu'];

export function parseBackendRequest(value: string | undefined, source = 'backend'): BackendRequest {
  const v = (value ?? 'auto').trim().toLowerCase();
  if (v === 'auto' || v === '') return 'auto';
  if (v === 'tfjs-node' || v === 'node' || v === 'tensorflow') return 'tfjs-node';
  if (v === 'wasm' || v === 'cpu') return v;
  throw badValue(source, `unknown backend '${value}' (expected auto, tfjs-node, wasm or cpu)`, { value });
}
