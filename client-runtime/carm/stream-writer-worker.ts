/**
 * The stream writer's thread (started by StreamWriter; runs from the
 * compiled dist/). It owns the store's write connection. Writes that arrive
 * while it is busy are coalesced and committed together in one transaction
 * on the next turn of its event loop, or at once on flush/close.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SampleStore } from '../../storage-tier/sample-store.js';
import type { SampleInput } from '../../storage-tier/sample-codec.js';
import type { StreamFlushResult, StreamWriterWorkerData, WriteMessage, WriterReply, WriterRequest } from './stream-writer.js';
import { serializeError, type SerializedError } from '../../common/worker-error.js';

function run(data: StreamWriterWorkerData): void {
  const port = parentPort!;
  const reply = (msg: WriterReply): void => port.postMessage(msg);
  let store: SampleStore;
  try {
    store = SampleStore.open(data.file, { capacity: data.capacity });
  } catch (err) {
    reply({ type: 'error', error: serializeError(err, 'STRATA_ERR_STREAM_WRITER') });
    return;
  }

  let queue: WriteMessage[] = [];
  let scheduled = false;
  let written = 0;
  let failure: SerializedError | null = null;

  const commit = (): void => {
    scheduled = false;
    if (queue.length === 0 || failure !== null) {
      queue = [];
      return;
    }
    const batch = queue;
    queue = [];
    const samples: SampleInput[] = [];
    const f = data.featureSize;
    for (const m of batch) {
      const features = data.featureType === 'uint8' ? new Uint8Array(m.features) : new Float32Array(m.features);
      const labels = new Int32Array(m.labels);
      const tasks = new Int32Array(m.tasks);
      const logits = m.logits === null ? null : new Float32Array(m.logits);
      const hasLogits = m.hasLogits === null ? null : new Uint8Array(m.hasLogits);
      const l = m.logitsSize;
      for (let i = 0; i < m.n; i++) {
        const s: SampleInput = { task: tasks[i]!, label: labels[i]!, features: features.subarray(i * f, (i + 1) * f) };
        if (logits !== null && hasLogits![i] === 1) s.logits = logits.subarray(i * l, (i + 1) * l);
        samples.push(s);
      }
    }
    try {
      store.ingest(samples);
      written += samples.length;
    } catch (err) {
      // Sticky: later flushes report it; the store keeps every batch committed before.
      failure = serializeError(err, 'STRATA_ERR_STREAM_WRITER');
    }
  };

  const result = (): StreamFlushResult => {
    const counts = store.countsByClass();
    const bytes = store.bytesUsed();
    return { stored: store.count(), countsByClass: Object.fromEntries(counts), bytes: bytes.payloadBytes, fileBytes: bytes.fileBytes, written };
  };

  port.on('message', (msg: WriterRequest) => {
    switch (msg.type) {
      case 'write':
        queue.push(msg);
        if (!scheduled) {
          scheduled = true;
          setImmediate(commit);
        }
        return;
      case 'flush':
        commit();
        if (failure !== null) reply({ type: 'flushed', id: msg.id, error: failure });
        else reply({ type: 'flushed', id: msg.id, result: result() });
        return;
      case 'close':
        commit();
        store.close();
        reply(failure !== null ? { type: 'closed', id: msg.id, error: failure } : { type: 'closed', id: msg.id });
        port.close();
        return;
    }
  });
  reply({ type: 'ready' });
}

run(workerData as StreamWriterWorkerData);
