/**
 * The swap worker thread (started by SwapManager in async mode; runs from
 * the compiled dist/). It owns a read-only connection to the sample store,
 * takes requests from the request ring, reads "a random stored sample of the
 * same class" for each, waits the device's storage latency per read, and
 * writes the sample into the response ring for the training thread to apply.
 * It only ever blocks itself (Atomics.wait), never the training thread.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { StrataError } from '../../common/strata-error.js';
import { Rng } from '../../ml/rng.js';
import type { StoredSample } from '../../storage-tier/sample-codec.js';
import { SampleStore } from '../../storage-tier/sample-store.js';
import { sleepSync } from '../sleep.js';
import { serializeError } from '../../common/worker-error.js';
import { CTRL, CTRL_ERR_OFFSET, CTRL_F64, REQ_FIELDS, RES_HEADER, RES_STATUS, WORKER_STATUS, type SwapWorkerData } from './swap-mailbox.js';

/** Requests taken per read transaction when there is no latency to wait. */
const BATCH = 256;
/** How long an idle worker sleeps before re-checking the stop flag (a notify wakes it sooner). */
const IDLE_WAIT_MS = 1000;

function run(data: SwapWorkerData): void {
  const port = parentPort!;
  const { layout, storageLatencyMs: latency } = data;
  const ctrl = new Int32Array(data.control, 0, 16);
  const ctrlF64 = new Float64Array(data.control, 64, 8);
  const req = new Float64Array(data.requests);
  const res = { f64: new Float64Array(data.responses), f32: new Float32Array(data.responses), u8: new Uint8Array(data.responses) };
  const cap = layout.capacity;
  const fetchRng = new Rng(data.seed ^ 0x2545f491);
  const rng = (): number => fetchRng.next();

  let store: SampleStore;
  try {
    store = SampleStore.openReadOnly(data.file);
  } catch (err) {
    port.postMessage({ type: 'error', error: serializeError(err, 'STRATA_ERR_SWAP_WORKER') });
    return;
  }
  Atomics.store(ctrl, CTRL.STATUS, WORKER_STATUS.RUNNING);
  port.postMessage({ type: 'ready' });

  let tail = 0;
  let head = 0;

  const deliver = (sample: StoredSample | null): void => {
    const q = ((tail >>> 0) % cap) * REQ_FIELDS;
    const off = ((head >>> 0) % cap) * layout.recordBytes;
    const h = off / 8;
    res.f64[h + RES_HEADER.SLOT] = req[q]!;
    res.f64[h + RES_HEADER.LABEL] = req[q + 1]!;
    res.f64[h + RES_HEADER.GENERATION] = req[q + 2]!;
    res.f64[h + RES_HEADER.STEP] = req[q + 3]!;
    res.f64[h + RES_HEADER.TIME] = req[q + 4]!;
    if (sample === null) {
      res.f64[h + RES_HEADER.STATUS] = RES_STATUS.MISSED;
    } else {
      if (sample.dtype !== layout.featureType || sample.features.length !== layout.featureSize) {
        throw new StrataError(
          'STRATA_ERR_SWAP_SAMPLE_MISMATCH',
          `${data.file}: stored sample ${sample.id} has ${sample.features.length} ${sample.dtype} features; the episodic memory holds ${layout.featureSize} ${layout.featureType}`,
          { file: data.file, id: sample.id },
        );
      }
      const fo = off + layout.featuresOffset;
      if (layout.featureType === 'uint8') res.u8.set(sample.features, fo);
      else res.f32.set(sample.features, fo / 4);
      const hasLogits = layout.logitsSize > 0 && sample.logits !== null && sample.logits.length === layout.logitsSize;
      if (hasLogits) res.f32.set(sample.logits!, (off + layout.logitsOffset) / 4);
      res.f64[h + RES_HEADER.TASK] = sample.task;
      res.f64[h + RES_HEADER.HAS_LOGITS] = hasLogits ? 1 : 0;
      res.f64[h + RES_HEADER.STATUS] = RES_STATUS.SAMPLE;
    }
    head = (head + 1) | 0;
    tail = (tail + 1) | 0;
  };

  try {
    for (;;) {
      if (Atomics.load(ctrl, CTRL.STOP) === 1) break;
      const reqHead = Atomics.load(ctrl, CTRL.REQ_HEAD);
      if (reqHead === tail) {
        Atomics.wait(ctrl, CTRL.REQ_HEAD, reqHead, IDLE_WAIT_MS);
        continue;
      }
      const t0 = performance.now();
      if (latency > 0) {
        // One read and one wait per sample, each published as soon as it is ready.
        while (tail !== reqHead && Atomics.load(ctrl, CTRL.STOP) === 0) {
          sleepSync(latency);
          const label = req[((tail >>> 0) % cap) * REQ_FIELDS + 1]!;
          deliver(store.fetchRandomOfClass(label, rng));
          Atomics.store(ctrl, CTRL.RES_HEAD, head);
          Atomics.store(ctrl, CTRL.REQ_TAIL, tail);
        }
      } else {
        const n = Math.min((reqHead - tail) | 0, BATCH);
        const labels = new Array<number>(n);
        for (let i = 0; i < n; i++) labels[i] = req[(((tail + i) >>> 0) % cap) * REQ_FIELDS + 1]!;
        const samples = store.fetchManyRandomOfClasses(labels, rng);
        for (const s of samples) deliver(s);
        Atomics.store(ctrl, CTRL.RES_HEAD, head);
        Atomics.store(ctrl, CTRL.REQ_TAIL, tail);
      }
      ctrlF64[CTRL_F64.BUSY_MS] = ctrlF64[CTRL_F64.BUSY_MS]! + (performance.now() - t0);
    }
    Atomics.store(ctrl, CTRL.STATUS, WORKER_STATUS.STOPPED);
  } catch (err) {
    const bytes = new TextEncoder().encode(JSON.stringify(serializeError(err, 'STRATA_ERR_SWAP_WORKER')));
    const area = new Uint8Array(data.control, CTRL_ERR_OFFSET);
    const len = Math.min(bytes.length, area.length);
    area.set(bytes.subarray(0, len));
    Atomics.store(ctrl, CTRL.ERR_LEN, len);
    Atomics.store(ctrl, CTRL.STATUS, WORKER_STATUS.FAILED);
  } finally {
    store.close();
  }
}

run(workerData as SwapWorkerData);
