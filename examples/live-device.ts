/**
 * A device fed live through `ingest()`: a coordinator and one agent in this
 * process, on loopback. Samples reach the agent in batches as a sensor would
 * deliver them (each batch committed to the device's SQLite store before
 * `ingest` returns); each round it learns from what arrived since the last,
 * and the arrival of new classes is a task boundary.
 *
 *   node dist-examples/live-device.js [dir]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { builtinModel, flatModel, loadProfile, syntheticDataset, testSetEvaluator } from 'strata';
import { Coordinator, CoordinatorStore, FedAvg, ServerEvaluation } from 'strata/coordinator';
import { DeviceAgent } from 'strata/device';

const dir = process.argv[2] ?? mkdtempSync(path.join(os.tmpdir(), 'strata-live-'));
const logger = pino({ level: 'warn' });
const data = syntheticDataset();
const shape = { inputShape: data.inputShape, numClasses: data.numClasses };
const serverModel = builtinModel('mlp')(shape, 1);

const store = CoordinatorStore.open(path.join(dir, 'coordinator.sqlite'));
const coordinator = new Coordinator(
  { port: 0, perRound: 1, minClients: 1, rounds: 3, overCommit: 1, training: { method: 'er', replay: 0.5, batchSize: 32 } },
  { strategy: new ServerEvaluation(new FedAvg(), testSetEvaluator(serverModel, data, 500)), model: flatModel(serverModel), store, logger },
);
await coordinator.start();

const agent = new DeviceAgent({
  url: coordinator.url, agentId: 'sensor-1', token: 'unused', profile: loadProfile('raspberry-pi-4'), data, live: true,
  db: path.join(dir, 'sensor-1.sqlite'), logger,
});
await agent.start();

// Classes 0-4 first, then 5-9: the second batch is a new task.
const rowsOf = (classes: number[], n: number): number[] => {
  const out: number[] = [];
  for (let i = 0; i < data.train.count && out.length < n; i++) if (classes.includes(data.train.labels[i]!)) out.push(i);
  return out;
};
const feed = (rows: number[]): number => agent.ingest(rows.map((r) => ({
  label: data.train.labels[r]!, features: data.train.features.subarray(r * data.featureSize, (r + 1) * data.featureSize) as Uint8Array,
})));
feed(rowsOf([0, 1, 2, 3, 4], 400));
const batches = [rowsOf([5, 6, 7, 8, 9], 400), rowsOf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 300)];
const timer = setInterval(() => {
  // The next batch arrives once the device has trained on the last one.
  if (agent.report().rounds.length >= 3 - batches.length && batches.length > 0) feed(batches.shift()!);
}, 50);
await coordinator.finished;
clearInterval(timer);
const report = await agent.stop();
await coordinator.stop(0);
store.close();
console.log(JSON.stringify({
  ingested: report.ingested, rounds: report.rounds.map((r) => ({ round: r.roundId, samples: r.streamSamples, task: r.device.task })),
  accuracy: coordinator.status().lastAccuracy,
}));
