/**
 * One client slot of a simulation worker (a worker thread; runs from the
 * compiled dist/). It starts tfjs and builds the model once, then runs client
 * after client through the device runtime on the worker's shared copy of the
 * data set, each from the worker's shared copy of the model version its
 * assignment names. Its kernel thread id goes to the worker first, so the
 * worker can put this thread into the slot's cgroup.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../ml/backend.js';
import { clientAppModel, loadClientApp } from './client-app.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import { runClientJob, type SlotContext } from './client-job.js';
import { threadId } from './thread-cpu.js';
import type { ClientResult, AppSpec, SlotToWorker, WorkerToSlot } from './sim-messages.js';

export interface SlotWorkerData {
  spec: AppSpec;
  features: SharedArrayBuffer;
  featureType: 'uint8' | 'float32';
  labels: SharedArrayBuffer;
  count: number;
  featureSize: number;
  numClasses: number;
  scale: number;
  inputShape: [number, number, number];
}

async function main(): Promise<void> {
  const port = parentPort!;
  const data = workerData as SlotWorkerData;
  const send = (m: SlotToWorker): void => port.postMessage(m);
  send({ type: 'tid', tid: threadId() });
  const started = performance.now();
  // One training thread: this slot is one virtual client, held to its budget, and the slot's cgroup holds only this
  // thread (XNNPACK's pool threads would run outside it). Explicit, so an inherited STRATA_THREADS cannot win.
  await initBackend({ threads: 1 });
  const train: DataSplit = {
    features: data.featureType === 'uint8' ? new Uint8Array(data.features) : new Float32Array(data.features),
    labels: new Uint8Array(data.labels),
    count: data.count,
  };
  const app = await loadClientApp(data.spec.clientApp);
  const ctx: SlotContext = {
    model: await clientAppModel(app, { inputShape: data.inputShape, numClasses: data.numClasses }, data.spec, false),
    train, featureSize: data.featureSize, numClasses: data.numClasses, scale: data.scale, seed: data.spec.seed,
    ...(app.methods !== undefined ? { methods: app.methods } : {}),
  };
  send({ type: 'ready', initSeconds: (performance.now() - started) / 1000 });
  port.on('message', (m: WorkerToSlot) => {
    if (m.type === 'stop') {
      port.close();
      return;
    }
    // One job at a time: the worker never sends a second before this one's reply.
    runClientJob(ctx, m.job, Float32Array.from(new Float32Array(m.model)), m.enforcer).then(
      (result) => port.postMessage({ type: 'result', result: ownBuffer(result) } satisfies SlotToWorker, [result.frame.buffer as ArrayBuffer]),
      (err: unknown) => send({ type: 'failed', jobId: m.job.jobId, message: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/** The frame in an ArrayBuffer of its own, so it can be transferred. */
function ownBuffer(r: ClientResult): ClientResult {
  const f = r.frame;
  if (f.byteOffset === 0 && f.byteLength === f.buffer.byteLength) return r;
  return { ...r, frame: f.slice() };
}

main().catch((err: unknown) => {
  parentPort?.postMessage({ type: 'failed', jobId: -1, message: `slot failed to start: ${err instanceof Error ? err.message : String(err)}` } satisfies SlotToWorker);
});
