/**
 * A simulation worker process (forked by `WorkerPool`; runs from the compiled
 * dist/). Resource sharing: it loads the data set once into shared memory,
 * holds each global model version its clients need once in shared memory,
 * and runs clients on up to `slots` slot threads that each build the model
 * once. Each slot thread sits in its own CPU group whose quota is set to the
 * budget of the client it runs; the host keeps the budgets of a worker's
 * running clients at or under one core.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { runtimeFile } from '../common/runtime-file.js';
import { clientAppDataset, loadClientApp } from './client-app.js';
import { CpuGroup, type EnforcerKind } from './budget.js';
import type { ClientJob, EnforcerSpec, HostToWorker, AppSpec, SlotToWorker, WorkerToHost, WorkerToSlot } from './sim-messages.js';
import type { SlotWorkerData } from './slot-thread.js';

interface Slot {
  index: number;
  thread: Worker;
  state: 'starting' | 'idle' | 'busy';
  group: CpuGroup | null;
  enforcer: EnforcerKind;
  job: ClientJob | null;
}

const send = (m: WorkerToHost): void => {
  process.send?.(m);
};

let workerId = 0;
let spec: AppSpec;
let enforcer: EnforcerSpec;
let maxSlots = 1;
let slotData: SlotWorkerData;
/** Global model versions, each in shared memory the slots read. */
const models = new Map<number, SharedArrayBuffer>();
let keepFrom = 0;
let domain: CpuGroup | null = null;
const slots: Slot[] = [];
const queue: ClientJob[] = [];
let shuttingDown = false;

async function init(m: Extract<HostToWorker, { type: 'init' }>): Promise<void> {
  const started = performance.now();
  workerId = m.workerId;
  spec = m.spec;
  enforcer = m.enforcer;
  maxSlots = m.slots;
  const ds = await clientAppDataset(await loadClientApp(spec.clientApp), spec);
  const fBytes = ds.train.features.byteLength;
  const features = new SharedArrayBuffer(fBytes);
  new Uint8Array(features).set(new Uint8Array(ds.train.features.buffer, ds.train.features.byteOffset, fBytes));
  const labels = new SharedArrayBuffer(ds.train.count);
  new Uint8Array(labels).set(ds.train.labels);
  slotData = {
    spec, features, labels, count: ds.train.count, featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale,
    inputShape: ds.inputShape, featureType: ds.train.features instanceof Uint8Array ? 'uint8' : 'float32',
  };
  if ((enforcer.kind === 'cgroup-v1' || enforcer.kind === 'cgroup-v2') && enforcer.root !== null) {
    try {
      domain = CpuGroup.workerDomain(enforcer.kind, path.join(enforcer.root, `w${workerId}-${process.pid}`), process.pid);
    } catch (err) {
      send({ type: 'note', message: `worker ${workerId}: cannot create its cgroup (${(err as Error).message}); slots use the duty cycle` });
    }
  }
  send({ type: 'ready', pid: process.pid, loadSeconds: (performance.now() - started) / 1000 });
  // One slot starts warming up (tfjs and the model) now, before the first job asks for it.
  startSlot();
}

function startSlot(): Slot {
  const thread = new Worker(runtimeFile(import.meta.url, 'slot-thread'), { workerData: slotData });
  const wantsCgroup = enforcer.kind === 'cgroup-v1' || enforcer.kind === 'cgroup-v2';
  const slot: Slot = { index: slots.length, thread, state: 'starting', group: null, enforcer: wantsCgroup ? 'duty' : enforcer.kind, job: null };
  slots.push(slot);
  thread.on('message', (m: SlotToWorker) => onSlotMessage(slot, m));
  thread.on('error', (err) => {
    send({ type: 'note', message: `worker ${workerId} slot ${slot.index} crashed: ${err.message}` });
    process.exit(70);
  });
  thread.on('exit', (code) => {
    if (!shuttingDown && (slot.state !== 'idle' || code !== 0)) process.exit(70);
  });
  return slot;
}

function onSlotMessage(slot: Slot, m: SlotToWorker): void {
  switch (m.type) {
    case 'tid':
      if (domain !== null && m.tid !== null) {
        try {
          const g = CpuGroup.create(domain.kind, path.join(domain.dir, `s${slot.index}`), { threaded: true });
          g.addThread(m.tid);
          slot.group = g;
          slot.enforcer = domain.kind;
        } catch (err) {
          send({ type: 'note', message: `worker ${workerId} slot ${slot.index}: cgroup placement failed (${(err as Error).message}); duty cycle instead` });
        }
      }
      return;
    case 'ready':
      slot.state = 'idle';
      pump();
      return;
    case 'result':
      slot.state = 'idle';
      slot.job = null;
      send({ type: 'result', result: m.result, slot: slot.index });
      pump();
      return;
    case 'failed':
      slot.state = m.jobId === -1 ? 'starting' : 'idle';
      slot.job = null;
      send({ type: 'failed', jobId: m.jobId, message: m.message });
      if (m.jobId === -1) process.exit(70);
      pump();
  }
}

function pump(): void {
  while (queue.length > 0) {
    const slot = slots.find((s) => s.state === 'idle');
    if (slot === undefined) {
      // Start as many slot threads as there are waiting jobs (up to the cap); they start in parallel.
      let starting = slots.filter((s) => s.state === 'starting').length;
      while (slots.length < maxSlots && starting < queue.length) {
        startSlot();
        starting++;
      }
      return;
    }
    const job = queue.shift()!;
    if (slot.group !== null) {
      try {
        slot.group.setShare(job.budget);
      } catch (err) {
        send({ type: 'note', message: `worker ${workerId} slot ${slot.index}: cannot set the quota (${(err as Error).message}); duty cycle instead` });
        slot.group = null;
        slot.enforcer = 'duty';
      }
    }
    slot.state = 'busy';
    slot.job = job;
    const model = models.get(modelOf(job));
    if (model === undefined) {
      slot.state = 'idle';
      slot.job = null;
      send({ type: 'failed', jobId: job.jobId, message: `worker ${workerId} holds no model version ${modelOf(job)}` });
      continue;
    }
    send({ type: 'started', jobId: job.jobId, slot: slot.index });
    slot.thread.postMessage({ type: 'job', job, enforcer: slot.enforcer, model } satisfies WorkerToSlot);
  }
}

/** The model a job trains from, as the host numbered it when it sent it. */
function modelOf(job: ClientJob): number {
  return job.model ?? job.assignment.modelVersion;
}

/** Drops model versions no queued or running job needs, below the host's `keepFrom`. */
function evictModels(): void {
  const inUse = new Set<number>([...queue, ...slots.flatMap((s) => (s.job === null ? [] : [s.job]))].map(modelOf));
  for (const v of [...models.keys()]) if (v < keepFrom && !inUse.has(v)) models.delete(v);
}

process.on('message', (m: HostToWorker) => {
  switch (m.type) {
    case 'init':
      init(m).catch((err: unknown) => {
        send({ type: 'note', message: `worker ${m.workerId} failed to start: ${err instanceof Error ? err.message : String(err)}` });
        process.exit(70);
      });
      return;
    case 'model': {
      const buf = new SharedArrayBuffer(m.weights.byteLength);
      new Float32Array(buf).set(m.weights);
      models.set(m.version, buf);
      return;
    }
    case 'job':
      queue.push(m.job);
      keepFrom = Math.max(keepFrom, m.keepFrom);
      evictModels();
      pump();
      return;
    case 'shutdown':
      shuttingDown = true;
      void Promise.all(slots.map((s) => s.thread.terminate())).then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the host decides when workers stop (it drains the round first).
process.on('SIGINT', () => undefined);
