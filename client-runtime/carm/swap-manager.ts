/**
 * CarM's swapping between the storage tier and the RAM episodic memory.
 *
 * After each training step the policy picks EM slots to swap out; for each,
 * "a random stored sample of the same class" is read from the store and
 * written into the slot, so the EM's class balance never changes.
 *
 * `async`: a worker thread with its own read-only SQLite connection does the
 * reads (and waits the device's storage latency). Requests and results
 * travel through two SharedArrayBuffer rings, so neither side depends on
 * the other's event loop: the synchronous training loop polls results in
 * `applyReady()` at a step boundary without ever waiting. At most
 * `maxPendingSwaps` swaps are in flight; beyond that a step's swaps are
 * skipped (counted), so slow storage lowers the swap rate instead of
 * stalling training or queueing without bound.
 * `sync`: the same reads and waits, inline in `afterStep` (CarM's baseline).
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { runtimeFile } from '../../common/runtime-file.js';
import { StrataError } from '../../common/strata-error.js';
import { Rng } from '../../ml/rng.js';
import { SampleStore } from '../../storage-tier/sample-store.js';
import { EpisodicMemory } from './episodic-memory.js';
import { reviveError, type SerializedError } from '../../common/worker-error.js';
import { sleep, sleepSync } from '../sleep.js';
import {
  CTRL, CTRL_BYTES, CTRL_ERR_OFFSET, CTRL_F64, CTRL_F64_OFFSET, CTRL_F64S, CTRL_INT32S, REQ_FIELDS, RES_HEADER, RES_STATUS, WORKER_STATUS,
  swapMailboxLayout, type SwapMailboxLayout, type SwapWorkerData,
} from './swap-mailbox.js';
import { selectSwapSlots, type ReplayedSampleInfo } from './swap-policy.js';
import {
  compileSwapManagerOptions, type CompiledSwapManagerOptions, type SwapManagerOptions, type SwapManagerState, type SwapStats,
} from './swap-manager-options.js';

export {
  compileSwapManagerOptions, type CompiledSwapManagerOptions, type SwapManagerOptions, type SwapManagerState, type SwapMode, type SwapStats,
} from './swap-manager-options.js';

export class SwapManager {
  readonly options: CompiledSwapManagerOptions;
  #state: SwapManagerState = 'running';
  #memory: EpisodicMemory;
  #policyRng: Rng;
  #step = 0;
  // async
  #worker: Worker | null = null;
  #exited: Promise<void> = Promise.resolve();
  #workerFailure: StrataError | null = null;
  #layout: SwapMailboxLayout;
  #ctrl: Int32Array;
  #ctrlF64: Float64Array;
  #ctrlBytes: Uint8Array;
  #req: Float64Array;
  #res: { f64: Float64Array; f32: Float32Array; u8: Uint8Array };
  #reqHead = 0;
  #resTail = 0;
  // sync
  #store: SampleStore | null = null;
  #fetchRng: () => number;
  // stats
  #requested = 0;
  #fetched = 0;
  #applied = 0;
  #missed = 0;
  #dropped = 0;
  #skipped = 0;
  #lagStepsSum = 0;
  #lagStepsMax = 0;
  #lagMsSum = 0;
  #syncWaitMs = 0;
  #drainWaitMs = 0;

  /** Opens the reader: the swap worker (async, awaited until its store is open) or an inline read-only connection (sync). */
  static async start(options: SwapManagerOptions): Promise<SwapManager> {
    const manager = new SwapManager(options);
    try {
      if (manager.options.mode === 'async') await manager.#startWorker();
      else if (manager.options.mode === 'sync') manager.#store = SampleStore.openReadOnly(manager.options.storeFile);
    } catch (err) {
      manager.#state = 'closed';
      throw err;
    }
    return manager;
  }

  private constructor(options: SwapManagerOptions) {
    this.options = compileSwapManagerOptions(options);
    const memory = options.memory;
    this.#memory = memory;
    this.#policyRng = new Rng(this.options.seed);
    const fetchRng = new Rng(this.options.seed ^ 0x5bd1e995);
    this.#fetchRng = () => fetchRng.next();
    this.#layout = swapMailboxLayout(this.options.mode === 'async' ? this.options.maxPendingSwaps : 0, memory.featureSize, memory.featureType, memory.logitsSize);
    const control = new SharedArrayBuffer(CTRL_BYTES);
    this.#ctrl = new Int32Array(control, 0, CTRL_INT32S);
    this.#ctrlF64 = new Float64Array(control, CTRL_F64_OFFSET, CTRL_F64S);
    this.#ctrlBytes = new Uint8Array(control, CTRL_ERR_OFFSET);
    const cap = this.#layout.capacity;
    this.#req = new Float64Array(new SharedArrayBuffer(cap * REQ_FIELDS * 8));
    const responses = new SharedArrayBuffer(cap * this.#layout.recordBytes);
    this.#res = { f64: new Float64Array(responses), f32: new Float32Array(responses), u8: new Uint8Array(responses) };
  }

  get state(): SwapManagerState {
    return this.#state;
  }

  get memory(): EpisodicMemory {
    return this.#memory;
  }

  /**
   * After a training step: picks slots with the policy and requests a
   * random stored sample of the same class for each. async: posts to the
   * worker and returns at once; sync: reads, waits the latency and applies
   * before returning.
   */
  afterStep(replayed: readonly ReplayedSampleInfo[], epochProgress: number): void {
    this.#assertRunning('afterStep');
    this.#step++;
    const { mode, ratio, policy } = this.options;
    if (mode === 'off' || replayed.length === 0 || ratio === 0) return;
    const slots = selectSwapSlots(policy, replayed, ratio, epochProgress, this.#policyRng);
    if (mode === 'sync') this.#swapInline(slots);
    else this.#request(slots);
  }

  /** At a step boundary: applies what the worker has delivered so far (async). Never waits. Returns how many were applied. */
  applyReady(): number {
    if (this.options.mode !== 'async' || this.#state === 'closed') return 0;
    this.#throwIfWorkerFailed();
    const head = Atomics.load(this.#ctrl, CTRL.RES_HEAD);
    if (head === this.#resTail) return 0;
    const { capacity, recordBytes, featuresOffset, logitsOffset, featureSize, featureType, logitsSize } = this.#layout;
    const { f64, f32, u8 } = this.#res;
    const memory = this.#memory;
    const now = performance.now();
    let applied = 0;
    for (let t = this.#resTail; t !== head; t = (t + 1) | 0) {
      const off = ((t >>> 0) % capacity) * recordBytes;
      const h = off / 8;
      const slot = f64[h + RES_HEADER.SLOT]!;
      const label = f64[h + RES_HEADER.LABEL]!;
      if (f64[h + RES_HEADER.STATUS] === RES_STATUS.MISSED) {
        this.#missed++;
        continue;
      }
      this.#fetched++;
      if (memory.generationOf(slot) !== f64[h + RES_HEADER.GENERATION] || memory.labelOf(slot) !== label) {
        this.#dropped++;
        continue;
      }
      const fo = off + featuresOffset;
      const features = featureType === 'uint8' ? u8.subarray(fo, fo + featureSize) : f32.subarray(fo / 4, fo / 4 + featureSize);
      const lo = (off + logitsOffset) / 4;
      const logits = f64[h + RES_HEADER.HAS_LOGITS] === 1 ? f32.subarray(lo, lo + logitsSize) : null;
      memory.replace(slot, features, label, f64[h + RES_HEADER.TASK]!, logits);
      const lagSteps = this.#step - f64[h + RES_HEADER.STEP]!;
      this.#lagStepsSum += lagSteps;
      if (lagSteps > this.#lagStepsMax) this.#lagStepsMax = lagSteps;
      this.#lagMsSum += now - f64[h + RES_HEADER.TIME]!;
      applied++;
    }
    this.#resTail = head;
    this.#applied += applied;
    return applied;
  }

  /** Waits until every requested swap is delivered and applied (end of task, tests). */
  async drain(): Promise<void> {
    if (this.options.mode !== 'async' || this.#state === 'closed') return;
    const t0 = performance.now();
    try {
      for (;;) {
        this.applyReady();
        if (this.#resTail === this.#reqHead) return;
        await sleep(Math.min(5, Math.max(0.5, this.options.storageLatencyMs)));
      }
    } finally {
      this.#drainWaitMs += performance.now() - t0;
    }
  }

  stats(): SwapStats {
    const n = this.#applied;
    return {
      requested: this.#requested,
      fetched: this.#fetched,
      applied: n,
      missed: this.#missed,
      dropped: this.#dropped,
      skipped: this.#skipped,
      pending: this.options.mode === 'async' ? (this.#reqHead - this.#resTail) | 0 : 0,
      meanLagSteps: n === 0 ? 0 : this.#lagStepsSum / n,
      maxLagSteps: this.#lagStepsMax,
      meanLagMs: n === 0 ? 0 : this.#lagMsSum / n,
      workerBusyMs: this.#ctrlF64[CTRL_F64.BUSY_MS]!,
      syncWaitMs: this.#syncWaitMs,
      drainWaitMs: this.#drainWaitMs,
    };
  }

  /** Stops the worker (requests still in flight are abandoned; `drain()` first to keep them) or closes the inline store. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return this.#exited;
    this.#state = 'closing';
    this.#store?.close();
    this.#store = null;
    if (this.#worker !== null) {
      Atomics.store(this.#ctrl, CTRL.STOP, 1);
      Atomics.notify(this.#ctrl, CTRL.REQ_HEAD);
      const worker = this.#worker;
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    this.#state = 'closed';
  }

  #request(slots: Int32Array): void {
    const memory = this.#memory;
    const req = this.#req;
    const cap = this.#layout.capacity;
    let head = this.#reqHead;
    const now = performance.now();
    for (const slot of slots) {
      if (((head - this.#resTail) | 0) >= cap) {
        this.#skipped++;
        continue;
      }
      const r = ((head >>> 0) % cap) * REQ_FIELDS;
      req[r] = slot;
      req[r + 1] = memory.labelOf(slot);
      req[r + 2] = memory.generationOf(slot);
      req[r + 3] = this.#step;
      req[r + 4] = now;
      head = (head + 1) | 0;
      this.#requested++;
    }
    if (head === this.#reqHead) return;
    this.#reqHead = head;
    Atomics.store(this.#ctrl, CTRL.REQ_HEAD, head);
    Atomics.notify(this.#ctrl, CTRL.REQ_HEAD);
  }

  #swapInline(slots: Int32Array): void {
    const store = this.#store!;
    const memory = this.#memory;
    const latency = this.options.storageLatencyMs;
    const t0 = performance.now();
    const labels = Array.from(slots, (s) => memory.labelOf(s));
    this.#requested += slots.length;
    try {
      // Without latency, one read transaction for the step; with it, one read (and one wait) per sample.
      const samples = latency > 0
        ? labels.map((l) => {
            sleepSync(latency);
            return store.fetchRandomOfClass(l, this.#fetchRng);
          })
        : store.fetchManyRandomOfClasses(labels, this.#fetchRng);
      samples.forEach((s, i) => {
        if (s === null) {
          this.#missed++;
          return;
        }
        this.#fetched++;
        const slot = slots[i]!;
        memory.replace(slot, s.features, s.label, s.task, s.logits !== null && s.logits.length === memory.logitsSize ? s.logits : null);
        this.#applied++;
      });
    } finally {
      this.#syncWaitMs += performance.now() - t0;
    }
  }

  async #startWorker(): Promise<void> {
    const workerData: SwapWorkerData = {
      file: this.options.storeFile,
      layout: this.#layout,
      storageLatencyMs: this.options.storageLatencyMs,
      seed: this.options.seed,
      control: this.#ctrl.buffer as SharedArrayBuffer,
      requests: this.#req.buffer as SharedArrayBuffer,
      responses: this.#res.u8.buffer as SharedArrayBuffer,
    };
    const script = runtimeFile(import.meta.url, 'swap-worker');
    let worker: Worker;
    try {
      worker = new Worker(script, { workerData });
    } catch (cause) {
      throw new StrataError('STRATA_ERR_SWAP_WORKER', `cannot start the swap worker ${script} (build with 'npm run build')`, { script }, { cause });
    }
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('error', (err) => {
      this.#workerFailure ??= this.#workerError() ?? new StrataError('STRATA_ERR_SWAP_WORKER', `swap worker crashed: ${err.message}`, { script }, { cause: err });
    });
    worker.once('exit', (code) => {
      if (this.#state === 'running') {
        this.#workerFailure ??= this.#workerError() ?? new StrataError('STRATA_ERR_SWAP_WORKER', `swap worker exited unexpectedly (code ${code})`, { code });
        this.#state = 'failed';
      }
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: { type: 'ready' } | { type: 'error'; error: SerializedError }): void => {
        cleanup();
        if (msg.type === 'ready') resolve();
        else reject(reviveError(msg.error, 'STRATA_ERR_SWAP_WORKER'));
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(new StrataError('STRATA_ERR_SWAP_WORKER', `swap worker failed to start: ${err.message}`, { script }, { cause: err }));
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new StrataError('STRATA_ERR_SWAP_WORKER', `swap worker exited during start-up (code ${code})`, { script, code }));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (err: unknown) => {
      await worker.terminate();
      await this.#exited;
      throw err;
    });
    // The training loop polls the rings; the worker must not keep the process alive on its own.
    worker.unref();
  }

  /** The error the worker left in the control block when it failed, if it did. */
  #workerError(): StrataError | null {
    if (Atomics.load(this.#ctrl, CTRL.STATUS) !== WORKER_STATUS.FAILED) return null;
    const len = Atomics.load(this.#ctrl, CTRL.ERR_LEN);
    let error: SerializedError = { code: 'STRATA_ERR_SWAP_WORKER', message: 'swap worker failed' };
    try {
      error = JSON.parse(new TextDecoder().decode(this.#ctrlBytes.slice(0, len))) as SerializedError;
    } catch {
      // keep the generic error
    }
    return reviveError(error, 'STRATA_ERR_SWAP_WORKER');
  }

  #throwIfWorkerFailed(): void {
    this.#workerFailure ??= this.#workerError();
    if (this.#workerFailure !== null) {
      if (this.#state === 'running') this.#state = 'failed';
      throw this.#workerFailure;
    }
  }

  #assertRunning(op: string): void {
    if (this.#state === 'failed') this.#throwIfWorkerFailed();
    if (this.#state !== 'running') {
      throw new StrataError('STRATA_ERR_STATE', `swap manager: ${op}() while ${this.#state}`, { op, state: this.#state });
    }
    if (this.options.mode === 'async') this.#throwIfWorkerFailed();
  }
}
