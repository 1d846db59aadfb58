/**
 * One side of `npm run bench -- train`, in its own process so each side
 * has a clean tfjs: `stock` runs tfjs's own `model.fit` on the stock wasm
 * kernels (one thread: stock tfjs never starts the threaded build on
 * Node); `strata` runs Strata's Trainer with Strata's kernels on `threads`
 * training threads. Prints one JSON line.
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../ml/backend.js';
import { loadDataset } from '../ml/datasets/load-dataset.js';
import { createModel, type ModelKind } from '../ml/models.js';
import { Trainer } from '../ml/trainer.js';
import { getFlatWeights } from '../ml/weights.js';

interface ChildArgs {
  side: 'stock' | 'strata' | 'roofline';
  model: ModelKind;
  samples: number;
  warmup: number;
  batch: number;
  /** Training threads for the strata side (default 1). */
  threads?: number;
  /** Default true: test accuracy after training (10k test samples). */
  evaluate?: boolean;
  /** Record every timed step's loss (an untimed run: stock's callback costs time). */
  recordLosses?: boolean;
  weightsOut?: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;

async function main(): Promise<object> {
  const backend = await initBackend({ backend: 'wasm', wasmKernels: args.side === 'stock' ? 'stock' : 'strata', threads: args.side === 'strata' ? args.threads ?? 1 : 1 });
  if (args.side === 'roofline') return roofline(backend.name);
  const ds = await loadDataset('mnist');
  const n = args.warmup + args.samples;
  const split = { features: ds.train.features.subarray(0, n * ds.featureSize), labels: ds.train.labels.subarray(0, n), count: n };
  const warm = { features: split.features.subarray(0, args.warmup * ds.featureSize), labels: split.labels.subarray(0, args.warmup), count: args.warmup };
  const timed = { features: split.features.subarray(args.warmup * ds.featureSize), labels: split.labels.subarray(args.warmup), count: args.samples };
  const model = createModel({ kind: args.model, inputShape: ds.inputShape, numClasses: ds.numClasses, seed: 1 });
  let seconds: number;
  let loss: number;
  let stepPath = 'tfjs model.fit';
  const stepLosses: number[] = [];
  if (args.side === 'stock') {
    model.compile({ optimizer: tf.train.adam(0.001), loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred) });
    const trainer = new Trainer(model, { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale });
    const all = (s: typeof warm) => trainer.batchBuilder.build(s, Int32Array.from({ length: s.count }, (_, i) => i));
    const w = all(warm);
    await model.fit(w.x, w.y, { batchSize: args.batch, epochs: 1, shuffle: false, verbose: 0 });
    const t = all(timed);
    const started = performance.now();
    const callbacks = args.recordLosses === true ? { onBatchEnd: async (_: number, logs?: tf.Logs) => { stepLosses.push(logs?.['loss'] ?? Number.NaN); } } : undefined;
    const h = await model.fit(t.x, t.y, { batchSize: args.batch, epochs: 1, shuffle: false, verbose: 0, ...(callbacks ? { callbacks } : {}) });
    seconds = (performance.now() - started) / 1000;
    loss = h.history['loss']?.[0] as number;
  } else {
    const trainer = new Trainer(model, { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale });
    stepPath = trainer.stepPath.kind;
    trainer.fit(warm, { epochs: 1, batchSize: args.batch, shuffle: false });
    const fit = trainer.fit(timed, { epochs: 1, batchSize: args.batch, shuffle: false, ...(args.recordLosses === true ? { onStep: ({ loss: l }: { loss: number }) => { stepLosses.push(l); } } : {}) });
    seconds = fit.seconds;
    loss = fit.loss;
  }
  const evalTrainer = new Trainer(model, { featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale });
  const testAccuracy = args.evaluate === false ? null : evalTrainer.evaluate(ds.test).accuracy;
  if (args.weightsOut !== undefined) writeFileSync(args.weightsOut, Buffer.from(getFlatWeights(model).buffer));
  return {
    side: args.side, model: args.model, backend: backend.name, kernels: backend.kernels, threads: backend.threads, stepPath,
    samples: args.samples, seconds, samplesPerSecond: args.samples / seconds, loss, testAccuracy,
    ...(args.recordLosses === true ? { stepLosses } : {}),
  };
}

/** Untransposed wasm matMul GFLOP/s at the MLP's shapes: the ceiling a trainer can approach. */
function roofline(backendName: string): object {
  const shapes: [number, number, number][] = [[64, 784, 256], [64, 256, 128], [784, 64, 256], [256, 64, 128]];
  let flops = 0;
  let seconds = 0;
  for (const [m, k, n] of shapes) {
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    for (let i = 0; i < 5; i++) tf.matMul(a, b).dispose();
    const reps = 200;
    const started = performance.now();
    for (let i = 0; i < reps; i++) tf.matMul(a, b).dispose();
    seconds += (performance.now() - started) / 1000;
    flops += 2 * m * k * n * reps;
    a.dispose();
    b.dispose();
  }
  return { side: 'roofline', backend: backendName, gflops: flops / seconds / 1e9 };
}

main().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`)).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
