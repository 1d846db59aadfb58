/**
 * What a simulation host and its worker hosts exchange through Redis: the
 * key names, a client job as BullMQ job data, and a result as one binary
 * value (a small JSON header, then the update frame's bytes). A run's global
 * model versions are raw float32 bytes under their own keys, written once
 * per version and read once per version by each worker host.
 */
import { StrataError } from '../../common/strata-error.js';
import type { ClientJob, ClientResult } from '../sim-messages.js';

/** BullMQ's key prefix and the default queue name. */
export const QUEUE_PREFIX = 'strata';
export const DEFAULT_QUEUE = 'clients';

/** Pub/sub channel on which a simulation host announces a run (worker hosts load its data and model ahead of its first job). */
export const RUNS_CHANNEL = 'strata:runs';

/** Results and models left behind (a simulation host that died and never came back) expire after a day. */
export const KEY_TTL_SECONDS = 24 * 3600;

export interface RunKeys {
  /** The run's client app and settings (JSON `AppSpec`). */
  spec: string;
  /** Global model version `v` as float32 bytes. */
  model(version: number): string;
  /** A job's result envelope (binary). */
  result(key: string): string;
  /** List of job keys whose results are in (the simulation host pops them). */
  done: string;
}

export function runKeys(runId: string): RunKeys {
  const base = `strata:run:${runId}`;
  return {
    spec: `${base}:spec`,
    model: (version) => `${base}:model:${version}`,
    result: (key) => `${base}:result:${key}`,
    done: `${base}:done`,
  };
}

/** A job's key: its round and client (one run of a client per assignment), and the run's job number. Also the BullMQ job id (`runId-key`). */
export function jobKey(job: ClientJob): string {
  return `r${job.assignment.roundId}-${job.clientId}-j${job.jobId}`;
}

/** A client job as JSON: the sample indices as base64 (BullMQ stores job data as JSON). */
export interface WireClientJob extends Omit<ClientJob, 'device'> {
  device: Omit<ClientJob['device'], 'indices'> & { indices: string };
}

/** BullMQ job data. */
export interface RedisJobData {
  runId: string;
  key: string;
  job: WireClientJob;
}

export function encodeJob(job: ClientJob): WireClientJob {
  const i = job.device.indices;
  return { ...job, device: { ...job.device, indices: Buffer.from(i.buffer, i.byteOffset, i.byteLength).toString('base64') } };
}

export function decodeJob(w: WireClientJob): ClientJob {
  const bytes = Buffer.from(w.device.indices, 'base64');
  const indices = new Int32Array(bytes.byteLength / 4);
  new Uint8Array(indices.buffer).set(bytes);
  return { ...w, device: { ...w.device, indices } };
}

/** The worker host a result came from, and when and how it ran there. */
export interface HostFacts {
  /** The worker host's name (`--name`; default HOSTNAME-PID). */
  name: string;
  /** Cores of client budget it runs at once (its worker processes). */
  cores: number;
  /** Wall-clock ms (epoch) the job started there. */
  startedAtMs: number;
  /** Share of a core the job held in the host's packing (its budget; 1 with budgets off). */
  load: number;
  /** Times BullMQ found the job stalled before (its earlier host died). */
  stalled: number;
}

export type ResultEnvelope =
  | { ok: true; host: HostFacts; result: Omit<ClientResult, 'frame'> }
  | { ok: false; host: HostFacts; message: string };

export function encodeResult(envelope: ResultEnvelope, frame: Uint8Array | null): Buffer {
  const head = Buffer.from(JSON.stringify(envelope));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(head.length);
  return Buffer.concat([len, head, frame ?? new Uint8Array(0)]);
}

export function decodeResult(data: Buffer): { envelope: ResultEnvelope; frame: Uint8Array } {
  if (data.length < 4 || data.readUInt32LE(0) > data.length - 4) throw new StrataError('STRATA_ERR_BAD_FRAME', `a job result of ${data.length} bytes is truncated`);
  const n = data.readUInt32LE(0);
  const envelope = JSON.parse(data.subarray(4, 4 + n).toString('utf8')) as ResultEnvelope;
  // Its own ArrayBuffer: the frame outlives the Redis reply buffer.
  const frame = new Uint8Array(data.subarray(4 + n));
  return { envelope, frame };
}

/** A model version's float32 bytes from Redis, in an aligned array of its own. */
export function decodeModel(data: Buffer): Float32Array {
  if (data.length % 4 !== 0) throw new StrataError('STRATA_ERR_BAD_FRAME', `a model of ${data.length} bytes is not float32`);
  const out = new Float32Array(data.length / 4);
  new Uint8Array(out.buffer).set(data);
  return out;
}
