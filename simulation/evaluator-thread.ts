/**
 * The simulation's evaluator (a worker thread of the simulation host; runs
 * from the compiled dist/): it holds the test split and a model, and scores
 * each global model version it is sent. Off the host's main thread, so the
 * next round's jobs and results keep flowing while a model is scored.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../ml/backend.js';
import { BatchBuilder } from '../ml/batches.js';
import { indicesOfClasses } from '../ml/datasets/dataset.js';
import { evaluateModel } from '../ml/trainer.js';
import { setFlatWeights } from '../ml/weights.js';
import { clientAppDataset, clientAppModel, loadClientApp } from './client-app.js';
import type { EvaluatorReply, EvaluatorRequest, EvaluatorWorkerData } from './evaluator.js';

async function main(): Promise<void> {
  const port = parentPort!;
  const data = workerData as EvaluatorWorkerData;
  try {
    // One thread: it shares the machine with the simulation's clients.
    await initBackend({ threads: 1 });
    const app = await loadClientApp(data.spec.clientApp);
    const ds = await clientAppDataset(app, data.spec);
    const model = await clientAppModel(app, { inputShape: ds.inputShape, numClasses: ds.numClasses }, data.spec, false);
    const batches = new BatchBuilder(ds.featureSize, ds.numClasses, ds.scale);
    const count = data.evalSamples > 0 ? Math.min(data.evalSamples, ds.test.count) : ds.test.count;
    const all = Int32Array.from({ length: count }, (_, i) => i);
    const seenCache = new Map<string, Int32Array>();
    port.on('message', (m: EvaluatorRequest) => {
      try {
        setFlatWeights(model, m.weights);
        const ev = evaluateModel(model, ds.test, batches, { indices: all });
        let accuracySeen: number | undefined;
        if (m.seenClasses !== null) {
          const key = m.seenClasses.join(',');
          let idx = seenCache.get(key);
          if (idx === undefined) seenCache.set(key, (idx = indicesOfClasses(ds.test, m.seenClasses)));
          accuracySeen = evaluateModel(model, ds.test, batches, { indices: idx }).accuracy;
        }
        port.postMessage({ id: m.id, accuracy: ev.accuracy, loss: ev.loss, ...(accuracySeen !== undefined ? { accuracySeen } : {}) } satisfies EvaluatorReply);
      } catch (err) {
        port.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) } satisfies EvaluatorReply);
      }
    });
    port.postMessage({ id: -1, ready: true } satisfies EvaluatorReply);
  } catch (err) {
    port.postMessage({ id: -1, error: `evaluator failed to start: ${err instanceof Error ? err.message : String(err)}` } satisfies EvaluatorReply);
  }
}

void main();
