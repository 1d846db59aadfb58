import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { StrataError } from '../../common/strata-error.js';
import { runtimeFile } from '../../common/runtime-file.js';
import type { HeapMemory } from '../wasm-simd/simd-kernels.js';
import {
  CONTROL_BYTES, controlViews, DONE, FAILED, GO, GRADS, SEQ, STATUS, STEP, STOPPED, waitFor, type ControlViews, type HelperMessage, type HelperReport,
} from './control.js';

export type HelperPoolState = 'running' | 'stopping' | 'stopped';

interface Helper {
  worker: Worker;
  port: MessagePort;
  control: ControlViews;
  /** Key of the plan attached there (-1: none). */
  attached: number;
  /** The sequence number of the last command. */
  seq: number;
  exited: boolean;
}

/** Loads of a control word before the main thread sleeps in `Atomics.wait` (a helper usually finishes within microseconds of it). */
const SPIN = 200_000;

/**
 * The node options a helper starts with: the parent's (the default), except
 * that the parent's --input-type (node -e code) would refuse a worker
 * started from a file. Only then is a list passed; V8 flags in it (e.g.
 * --trace-gc, --max-semi-space-size) are refused in a worker's execArgv, so
 * the common case of `node --v8-flag strata ...` inherits instead.
 */
function helperExecArgv(): string[] | undefined {
  const parent = process.execArgv;
  return parent.some((a) => a.startsWith('--input-type')) ? parent.filter((a) => !a.startsWith('--input-type')) : undefined;
}

/**
 * The threads that compute data-parallel steps beside the main thread:
 * each a worker with its own single-threaded wasm backend (helper-thread.ts).
 * One pool per process, started by `initBackend` when it trains on more
 * than one thread, shared by every trainer there (each attaches its plan
 * before its first step on a helper). Its workers are unref'd and block in
 * `Atomics.wait` when idle, so a process exits without stopping the pool.
 */
export class HelperPool {
  readonly #helpers: Helper[];
  #state: HelperPoolState = 'running';
  /** Whether the helpers can run ranges of the optimizer update on the main heap (Strata's SIMD kernels load there). */
  readonly sharedUpdate: boolean;
  /** The main thread's heap the helpers work on. */
  readonly memory: HeapMemory;

  private constructor(helpers: Helper[], memory: HeapMemory, sharedUpdate: boolean) {
    this.#helpers = helpers;
    this.memory = memory;
    this.sharedUpdate = sharedUpdate;
  }

  /**
   * Starts `count` helpers working on `memory` (the main thread's shared
   * wasm heap) and waits until each has its backend (rejects with the
   * first failure, stopping the others).
   */
  static async start(count: number, memory: HeapMemory, options: { timeoutMs?: number } = {}): Promise<HelperPool> {
    const script = runtimeFile(import.meta.url, 'helper-thread');
    const helpers: Helper[] = [];
    const ready: Promise<boolean>[] = [];
    for (let i = 0; i < count; i++) {
      const control = new SharedArrayBuffer(CONTROL_BYTES);
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(script, { workerData: { control, port: port2, memory }, transferList: [port2], execArgv: helperExecArgv() });
      const helper: Helper = { worker, port: port1, control: controlViews(control), attached: -1, seq: 0, exited: false };
      helpers.push(helper);
      ready.push(new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`helper ${i} did not start within ${options.timeoutMs ?? 60_000} ms`)), options.timeoutMs ?? 60_000);
        worker.on('message', (m: { type: string; message?: string; simd?: boolean }) => {
          clearTimeout(timer);
          if (m.type === 'ready') resolve(m.simd === true);
          else reject(new Error(m.message ?? 'helper failed to start'));
        });
        worker.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        worker.on('exit', (code) => {
          helper.exited = true;
          clearTimeout(timer);
          reject(new Error(`helper exited with code ${code} before it started`));
        });
      }));
    }
    let simd: boolean[];
    try {
      simd = await Promise.all(ready);
    } catch (err) {
      await Promise.all(helpers.map((h) => h.worker.terminate()));
      throw new StrataError('STRATA_ERR_BACKEND', `data-parallel helper threads did not start: ${(err as Error).message.split('\n')[0]}`);
    }
    for (const h of helpers) {
      h.worker.removeAllListeners('message');
      // A helper that fails later reports on its control block; the listener keeps an 'error' event from being thrown.
      h.worker.removeAllListeners('error');
      h.worker.on('error', () => {});
      h.worker.unref();
      h.port.unref();
    }
    return new HelperPool(helpers, memory, simd.every((x) => x));
  }

  get size(): number {
    return this.#helpers.length;
  }

  get state(): HelperPoolState {
    return this.#state;
  }

  #helper(i: number): Helper {
    if (this.#state !== 'running') throw new StrataError('STRATA_ERR_STATE', `helper pool is ${this.#state}`);
    const h = this.#helpers[i];
    if (h === undefined) throw new StrataError('STRATA_ERR_BAD_OPTION', `no helper ${i} (pool of ${this.#helpers.length})`);
    return h;
  }

  /** The plan key attached on helper `i` (-1: none). */
  attachedKey(i: number): number {
    return this.#helper(i).attached;
  }

  /** Queues a message; the helper reads it at its next wake (a step, or `wake`). */
  post(i: number, message: HelperMessage): void {
    const h = this.#helper(i);
    if (message.type === 'attach') h.attached = message.key;
    else if (message.type === 'detach' && h.attached === message.key) h.attached = -1;
    h.port.postMessage(message);
  }

  /** Starts a step on helper `i` (its arguments already in its control block: see `control(i)`); returns its sequence number. */
  step(i: number): number {
    const h = this.#helper(i);
    h.seq++;
    Atomics.store(h.control.ints, STEP, h.seq);
    Atomics.store(h.control.ints, SEQ, h.seq);
    Atomics.notify(h.control.ints, SEQ);
    return h.seq;
  }

  control(i: number): ControlViews {
    return this.#helper(i).control;
  }

  /** Waits until helper `i` has written its step's gradient; throws its error if it failed. */
  waitGradients(i: number): void {
    const h = this.#helper(i);
    waitFor(h.control.ints, GRADS, h.seq, SPIN);
    this.#check(i, h);
  }

  /** Lets helper `i` run its range of the update (`run`), or tells it there is none. */
  go(i: number, run: boolean): void {
    const h = this.#helper(i);
    Atomics.store(h.control.ints, GO, run ? h.seq : -h.seq);
    Atomics.notify(h.control.ints, GO);
  }

  /** Waits until helper `i` is done with its last command; throws its error if it failed. */
  waitDone(i: number): void {
    const h = this.#helper(i);
    waitFor(h.control.ints, DONE, h.seq, SPIN);
    this.#check(i, h);
  }

  #check(i: number, h: Helper): void {
    if (Atomics.load(h.control.ints, STATUS) === FAILED) {
      const m = receiveMessageOnPort(h.port)?.message as HelperReport | undefined;
      throw new StrataError('STRATA_ERR_WORKER', `data-parallel helper ${i} failed: ${m?.message ?? 'unknown error'}`, { helper: i });
    }
  }

  /** Tells every helper to stop and waits for their threads to end. */
  async stop(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    await Promise.all(this.#helpers.map(async (h) => {
      if (h.exited) return;
      const exited = new Promise<void>((resolve) => h.worker.once('exit', () => resolve()));
      h.port.postMessage({ type: 'stop' } satisfies HelperMessage);
      h.seq++;
      Atomics.store(h.control.ints, SEQ, h.seq);
      Atomics.notify(h.control.ints, SEQ);
      await exited;
      h.port.close();
    }));
    this.#state = 'stopped';
  }

  /** Whether helper `i` has stopped (for tests). */
  stopped(i: number): boolean {
    return Atomics.load(this.#helpers[i]!.control.ints, STATUS) === STOPPED;
  }
}
