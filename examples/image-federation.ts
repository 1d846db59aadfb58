/**
 * Your own CNN, federated over an image folder with two device agents and a
 * coordinator (in this process, on loopback): the images are a folder per
 * class (`DIR/train/<class>/*.png`, `DIR/test/<class>/*.png`), decoded and
 * resized to the model's input; the model is a tfjs Layers model you define.
 * Here the folder is written from a slice of MNIST first, so the example
 * runs anywhere; point `images:` at your own folder instead.
 *
 *   node dist-examples/image-federation.js [dir]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { buildModel, flatModel, loadDataset, loadProfile, testSetEvaluator, writeImageFolder, type ModelFactory } from 'strata';
import { Coordinator, CoordinatorStore, FedAvg, ServerEvaluation } from 'strata/coordinator';
import { DeviceAgent } from 'strata/device';

const dir = process.argv[2] ?? mkdtempSync(path.join(os.tmpdir(), 'strata-images-'));
const logger = pino({ level: 'warn' });

// 1. An image folder (from MNIST here).
const images = path.join(dir, 'images');
await writeImageFolder(await loadDataset('mnist'), images, { train: 1200, test: 300 });

// 2. Your model: it takes [h, w, c] images and outputs one logit per class (no softmax).
const smallCnn: ModelFactory = (shape, seed) => tf.sequential({
  name: 'small-cnn',
  layers: [
    tf.layers.conv2d({ name: 'conv', inputShape: shape.inputShape, filters: 8, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }),
    tf.layers.maxPooling2d({ name: 'pool', poolSize: 2 }),
    tf.layers.flatten({ name: 'flat' }),
    tf.layers.dense({ name: 'hidden', units: 32, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: seed + 1 }) }),
    tf.layers.dense({ name: 'logits', units: shape.numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }),
  ],
});

// 3. The data: decoded to 28x28 grey, classes in folder order.
const data = await loadDataset(`images:${images}`, { inputShape: [28, 28, 1] });
const shape = { inputShape: data.inputShape, numClasses: data.numClasses };

// 4. A coordinator and two agents, each with half of the images.
const server = await buildModel(smallCnn, shape, 1);
const store = CoordinatorStore.open(path.join(dir, 'coordinator.sqlite'));
// Each agent authenticates with its own token (strata coordinator --tokens FILE reads the same pairs from a file).
const tokens = new Map([['camera-0', 'token-of-camera-0'], ['camera-1', 'token-of-camera-1']]);
const coordinator = new Coordinator(
  { port: 0, tokens, perRound: 2, rounds: 3, overCommit: 1, training: { epochs: 2, batchSize: 32, learningRate: 0.005, method: 'finetune' } },
  { strategy: new ServerEvaluation(new FedAvg(), testSetEvaluator(server, data)), model: flatModel(server), store, logger },
);
await coordinator.start();
const agents = [0, 1].map((i) => new DeviceAgent({
  url: coordinator.url, agentId: `camera-${i}`, token: tokens.get(`camera-${i}`)!, profile: loadProfile('raspberry-pi-4'), data, shard: { index: i, count: 2 },
  partition: { kind: 'iid' }, samplesPerRound: 'whole', model: smallCnn, db: path.join(dir, `camera-${i}.sqlite`), logger,
}));
for (const a of agents) await a.start();
await coordinator.finished;
const rounds = (await Promise.all(agents.map((a) => a.stop()))).map((r) => r.rounds.length);
const status = coordinator.status();
await coordinator.stop(0);
store.close();
console.log(JSON.stringify({ images: data.train.count + data.test.count, classes: data.numClasses, rounds: status.roundsCompleted, accuracy: status.lastAccuracy, trained: rounds }));
