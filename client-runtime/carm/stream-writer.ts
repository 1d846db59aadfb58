/**
 * CarM's background writer: every stream sample of a task is persisted to
 * the device's sample store by a worker thread that owns the store's write
 * connection, so the training loop only pays for copying the samples into a
 * staging batch. Batches go over in one message each; the worker coalesces
 * whatever has queued into one transaction (one `SampleStore.ingest`), so
 * small writes still commit in large batches.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { runtimeFile } from '../../common/runtime-file.js';
import { StrataError } from '../../common/strata-error.js';
import type { StorageCapacity } from '../../storage-tier/sample-store-options.js';
import { reviveError, type SerializedError } from '../../common/worker-error.js';

export type StreamWriterState = 'running' | 'closing' | 'closed' | 'failed';

export interface StreamWriterOptions {
  storeFile: string;
  /** The store's budget: every sample, none, or at most N (class-balanced eviction). */
  capacity: StorageCapacity;
  featureSize: number;
  featureType: 'uint8' | 'float32';
  /** Samples staged on the calling thread before they go to the writer in one message. Default 1024. */
  batchSamples?: number;
  /** ...or once the oldest staged sample is this old (checked at the next write). Default 20. */
  maxDelayMs?: number;
}

export interface CompiledStreamWriterOptions {
  readonly storeFile: string;
  readonly capacity: StorageCapacity;
  readonly featureSize: number;
  readonly featureType: 'uint8' | 'float32';
  readonly batchSamples: number;
  readonly maxDelayMs: number;
}

export interface StreamSample {
  features: Uint8Array | Float32Array;
  label: number;
  task: number;
  logits?: Float32Array;
}

export interface StreamFlushResult {
  /** Samples in the store. */
  stored: number;
  countsByClass: Record<number, number>;
  /** Payload bytes stored (features + logits). */
  bytes: number;
  /** The database file's size as SQLite sees it. */
  fileBytes: number;
  /** Samples committed by this writer since it started. */
  written: number;
}

/** One `write` call: n samples packed into transferable buffers. */
export interface WriteMessage {
  type: 'write';
  n: number;
  features: ArrayBuffer;
  labels: ArrayBuffer;
  tasks: ArrayBuffer;
  /** 0 when no sample of the call has logits. */
  logitsSize: number;
  logits: ArrayBuffer | null;
  hasLogits: ArrayBuffer | null;
}

export type WriterRequest = WriteMessage | { type: 'flush'; id: number } | { type: 'close'; id: number };
export type WriterReply =
  | { type: 'ready' }
  | { type: 'error'; error: SerializedError }
  | { type: 'flushed'; id: number; result?: StreamFlushResult; error?: SerializedError }
  | { type: 'closed'; id: number; error?: SerializedError };

export interface StreamWriterWorkerData {
  file: string;
  capacity: StorageCapacity;
  featureSize: number;
  featureType: 'uint8' | 'float32';
}

function badOption(option: string, why: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `stream writer option '${option}' ${why} (got ${JSON.stringify(value) ?? String(value)})`, { option, value });
}

export function compileStreamWriterOptions(options: StreamWriterOptions): CompiledStreamWriterOptions {
  const { storeFile, capacity, featureSize, featureType } = options;
  if (typeof storeFile !== 'string' || storeFile.length === 0) throw badOption('storeFile', 'must be a file path', storeFile);
  if (capacity !== 'all' && capacity !== 'none' && !(typeof capacity === 'number' && Number.isSafeInteger(capacity) && capacity > 0)) {
    throw badOption('capacity', "must be 'all', 'none' or an integer > 0", capacity);
  }
  if (!Number.isSafeInteger(featureSize) || featureSize < 1) throw badOption('featureSize', 'must be an integer > 0', featureSize);
  if (featureType !== 'uint8' && featureType !== 'float32') throw badOption('featureType', "must be 'uint8' or 'float32'", featureType);
  const batchSamples = options.batchSamples ?? 1024;
  if (!Number.isSafeInteger(batchSamples) || batchSamples < 1) throw badOption('batchSamples', 'must be an integer > 0', batchSamples);
  const maxDelayMs = options.maxDelayMs ?? 20;
  if (typeof maxDelayMs !== 'number' || !(maxDelayMs >= 0)) throw badOption('maxDelayMs', 'must be a number >= 0', maxDelayMs);
  return Object.freeze({ storeFile, capacity, featureSize, featureType, batchSamples, maxDelayMs });
}

interface Stage {
  n: number;
  features: Uint8Array | Float32Array;
  labels: Int32Array;
  tasks: Int32Array;
  logits: Float32Array | null;
  hasLogits: Uint8Array;
}

interface Pending {
  resolve: (value: StreamFlushResult | undefined) => void;
  reject: (err: unknown) => void;
}

export class StreamWriter {
  readonly options: CompiledStreamWriterOptions;
  #worker: Worker;
  #state: StreamWriterState = 'running';
  #failure: StrataError | null = null;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #exited: Promise<void>;
  #queued = 0;
  #logitsSize: number | null = null;
  #stage: Stage;
  #stagedAt = 0;

  /** Starts the writer thread; resolves once it has opened (creating if needed) the store. */
  static async start(options: StreamWriterOptions): Promise<StreamWriter> {
    const compiled = compileStreamWriterOptions(options);
    const script = runtimeFile(import.meta.url, 'stream-writer-worker');
    const workerData: StreamWriterWorkerData = {
      file: compiled.storeFile,
      capacity: compiled.capacity,
      featureSize: compiled.featureSize,
      featureType: compiled.featureType,
    };
    let worker: Worker;
    try {
      worker = new Worker(script, { workerData });
    } catch (cause) {
      throw new StrataError('STRATA_ERR_STREAM_WRITER', `cannot start the stream writer ${script} (build with 'npm run build')`, { script }, { cause });
    }
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const cleanup = (): void => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        const onMessage = (msg: WriterReply): void => {
          cleanup();
          if (msg.type === 'ready') resolve();
          else if (msg.type === 'error') reject(reviveError(msg.error, 'STRATA_ERR_STREAM_WRITER'));
          else reject(new StrataError('STRATA_ERR_STREAM_WRITER', `stream writer: unexpected '${msg.type}' during start-up`, {}));
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(new StrataError('STRATA_ERR_STREAM_WRITER', `stream writer failed to start: ${err.message}`, { script }, { cause: err }));
        };
        const onExit = (code: number): void => {
          cleanup();
          reject(new StrataError('STRATA_ERR_STREAM_WRITER', `stream writer exited during start-up (code ${code})`, { script, code }));
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
      });
    } catch (err) {
      await worker.terminate();
      await exited;
      throw err;
    }
    return new StreamWriter(compiled, worker, exited);
  }

  private constructor(options: CompiledStreamWriterOptions, worker: Worker, exited: Promise<void>) {
    this.options = options;
    this.#stage = this.#newStage();
    this.#worker = worker;
    this.#exited = exited;
    worker.on('message', (msg: WriterReply) => this.#onReply(msg));
    worker.on('error', (err) => this.#fail(new StrataError('STRATA_ERR_STREAM_WRITER', `stream writer crashed: ${err.message}`, {}, { cause: err })));
    worker.once('exit', (code) => {
      if (this.#state !== 'closed' && this.#state !== 'closing') {
        this.#fail(new StrataError('STRATA_ERR_STREAM_WRITER', `stream writer exited unexpectedly (code ${code})`, { code }));
      }
    });
    // Only an awaited flush/close keeps the process alive for the writer.
    worker.unref();
  }

  get state(): StreamWriterState {
    return this.#state;
  }

  /** Samples handed to `write` so far. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Queues samples for the store and returns at once: they are copied into
   * a staging batch on this thread, which goes to the writer thread in one
   * message (buffers transferred) once it holds `batchSamples` samples or
   * its oldest is `maxDelayMs` old; flush() and close() send the rest. The
   * caller may reuse its arrays right away. A call with a bad sample throws
   * STRATA_ERR_BAD_SAMPLE and queues none of its samples.
   */
  write(samples: readonly StreamSample[]): void {
    this.#assertRunning('write');
    const n = samples.length;
    if (n === 0) return;
    const { featureSize, featureType, batchSamples, maxDelayMs } = this.options;
    let logitsSize = this.#logitsSize;
    for (let i = 0; i < n; i++) {
      const s = samples[i]!;
      const bad = (field: string, why: string): StrataError =>
        new StrataError('STRATA_ERR_BAD_SAMPLE', `stream sample ${i}: ${field} ${why}`, { index: i, field });
      if (featureType === 'uint8' ? !(s.features instanceof Uint8Array) : !(s.features instanceof Float32Array)) {
        throw bad('features', `must be a ${featureType === 'uint8' ? 'Uint8Array' : 'Float32Array'}`);
      }
      if (s.features.length !== featureSize) throw bad('features', `must hold ${featureSize} values (got ${s.features.length})`);
      if (!Number.isSafeInteger(s.label) || s.label < 0) throw bad('label', 'must be an integer >= 0');
      if (!Number.isSafeInteger(s.task) || s.task < 0) throw bad('task', 'must be an integer >= 0');
      if (s.logits !== undefined) {
        if (!(s.logits instanceof Float32Array) || s.logits.length === 0) throw bad('logits', 'must be a non-empty Float32Array');
        logitsSize ??= s.logits.length;
        if (s.logits.length !== logitsSize) throw bad('logits', `must hold ${logitsSize} values, as the first logits written (got ${s.logits.length})`);
      }
    }
    if (this.#logitsSize === null && logitsSize !== null) {
      // Logits from now on: staged samples before had none.
      this.#logitsSize = logitsSize;
      this.#stage.logits = new Float32Array(batchSamples * logitsSize);
    }
    for (let i = 0; i < n; i++) {
      const s = samples[i]!;
      const stage = this.#stage;
      const k = stage.n;
      if (k === 0) this.#stagedAt = performance.now();
      stage.features.set(s.features, k * featureSize);
      stage.labels[k] = s.label;
      stage.tasks[k] = s.task;
      if (s.logits !== undefined) {
        stage.logits!.set(s.logits, k * this.#logitsSize!);
        stage.hasLogits[k] = 1;
      }
      stage.n = k + 1;
      if (stage.n === batchSamples) this.#post();
    }
    this.#queued += n;
    if (this.#stage.n > 0 && performance.now() - this.#stagedAt >= maxDelayMs) this.#post();
  }

  /** Resolves when everything written so far is committed, with the store's counts. */
  async flush(): Promise<StreamFlushResult> {
    this.#assertRunning('flush');
    this.#post();
    const result = await this.#call('flush');
    return result!;
  }

  /** Commits what is queued, closes the store and stops the thread. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return this.#exited;
    if (this.#state === 'failed') {
      await this.#worker.terminate();
      this.#state = 'closed';
      return;
    }
    try {
      this.#post();
      await this.#call('close');
    } finally {
      this.#state = 'closing';
      const timer = setTimeout(() => void this.#worker.terminate(), 5000);
      await this.#exited;
      clearTimeout(timer);
      this.#state = 'closed';
    }
  }

  #newStage(): Stage {
    const { batchSamples, featureSize, featureType } = this.options;
    return {
      n: 0,
      features: featureType === 'uint8' ? new Uint8Array(batchSamples * featureSize) : new Float32Array(batchSamples * featureSize),
      labels: new Int32Array(batchSamples),
      tasks: new Int32Array(batchSamples),
      logits: this.#logitsSize === null ? null : new Float32Array(batchSamples * this.#logitsSize),
      hasLogits: new Uint8Array(batchSamples),
    };
  }

  /** Sends the staged samples to the writer thread (one message, buffers transferred). */
  #post(): void {
    const stage = this.#stage;
    if (stage.n === 0) return;
    const msg: WriteMessage = {
      type: 'write',
      n: stage.n,
      features: stage.features.buffer as ArrayBuffer,
      labels: stage.labels.buffer as ArrayBuffer,
      tasks: stage.tasks.buffer as ArrayBuffer,
      logitsSize: stage.logits === null ? 0 : this.#logitsSize!,
      logits: stage.logits === null ? null : (stage.logits.buffer as ArrayBuffer),
      hasLogits: stage.logits === null ? null : (stage.hasLogits.buffer as ArrayBuffer),
    };
    const transfer: ArrayBuffer[] = [msg.features, msg.labels, msg.tasks];
    if (msg.logits !== null) transfer.push(msg.logits, msg.hasLogits!);
    this.#worker.postMessage(msg, transfer);
    this.#stage = this.#newStage();
  }

  #call(type: 'flush' | 'close'): Promise<StreamFlushResult | undefined> {
    const id = this.#nextId++;
    return new Promise<StreamFlushResult | undefined>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ type, id } satisfies WriterRequest);
    });
  }

  #onReply(msg: WriterReply): void {
    if (msg.type !== 'flushed' && msg.type !== 'closed') return;
    const p = this.#pending.get(msg.id);
    if (p === undefined) return;
    this.#pending.delete(msg.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (msg.error !== undefined) {
      const err = reviveError(msg.error, 'STRATA_ERR_STREAM_WRITER');
      this.#failure ??= err;
      if (this.#state === 'running') this.#state = 'failed';
      p.reject(err);
    } else {
      p.resolve(msg.type === 'flushed' ? msg.result : undefined);
    }
  }

  #fail(err: StrataError): void {
    this.#failure ??= err;
    if (this.#state === 'running') this.#state = 'failed';
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #assertRunning(op: string): void {
    if (this.#state === 'failed' && this.#failure !== null) throw this.#failure;
    if (this.#state !== 'running') {
      throw new StrataError('STRATA_ERR_STATE', `stream writer: ${op}() while ${this.#state}`, { op, state: this.#state });
    }
  }
}
