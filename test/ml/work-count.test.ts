import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { isStrataError } from '../../common/strata-error.js';
import { createModel, parameterCount } from '../../ml/models.js';
import {
  countModelWork, inferenceFlops, optimizerStepFlops, trainingFlops, trainingWork,
} from '../../ml/work-count.js';

describe('counted work of a model', () => {
  it("Strata's MLP 784-256-128-10: hand-counted forward, training and optimizer FLOPs", () => {
    const model = createModel({ kind: 'mlp', inputShape: [28, 28, 1], numClasses: 10 });
    const w = countModelWork(model);
    // fc1: 2 x 784 x 256 multiply-adds + 256 bias + 256 relu; fc2: 2 x 256 x 128 + 128 + 128; logits: 2 x 128 x 10 + 10 (linear).
    expect(w.layers.map((l) => l.forwardFlops)).toEqual([401_920, 65_792, 2_570]);
    expect(w.forwardFlopsPerSample).toBe(470_282);
    // Every layer has weights: backward = 2 x forward, so training = 3 x forward.
    expect(w.trainingFlopsPerSample).toBe(3 * 470_282);
    expect(w.trainableParams).toBe(235_146);
    expect(w.trainableParams).toBe(parameterCount(model));
    expect(optimizerStepFlops('sgd', w.trainableParams)).toBe(2 * 235_146);
    expect(optimizerStepFlops('adam', w.trainableParams)).toBe(14 * 235_146);
    const t = trainingWork(model, 'adam');
    // A step of 10 stream + 10 replayed samples, and 3 such steps.
    expect(trainingFlops(t, 20, 1)).toBe(20 * 1_410_846 + 3_292_044);
    expect(trainingFlops(t, 60, 3)).toBe(3 * trainingFlops(t, 20, 1));
    expect(inferenceFlops(t, 100)).toBe(47_028_200);
    model.dispose();
  });

  it("Strata's CNN conv32-pool-conv64-pool-fc128: hand-counted per layer", () => {
    const model = createModel({ kind: 'cnn', inputShape: [28, 28, 1], numClasses: 10 });
    const w = countModelWork(model);
    const by = Object.fromEntries(w.layers.map((l) => [l.name, l]));
    // conv1 'same': 28 x 28 x 32 outputs, each 3 x 3 x 1 multiply-adds + bias + relu.
    expect(by['conv1']!.forwardFlops).toBe(28 * 28 * 32 * (2 * 9 + 1 + 1));
    expect(by['pool1']!.forwardFlops).toBe(14 * 14 * 32 * 4);
    expect(by['conv2']!.forwardFlops).toBe(14 * 14 * 64 * (2 * 9 * 32 + 1 + 1));
    expect(by['pool2']!.forwardFlops).toBe(7 * 7 * 64 * 4);
    expect(by['fc1']!.forwardFlops).toBe(128 * (2 * 3136 + 2));
    expect([by['image']!.forwardFlops, by['flatten']!.forwardFlops]).toEqual([0, 0]);
    expect(w.forwardFlopsPerSample).toBe(8_595_466);
    // Weight layers 3x, pooling 2x (no weights: backward = forward), reshape and flatten free.
    expect(by['pool1']!.trainingFlops).toBe(2 * 25_088);
    expect(w.trainingFlopsPerSample).toBe(3 * (501_760 + 7_250_432 + 803_072 + 2_570) + 2 * (25_088 + 12_544));
    expect(w.trainingFlopsPerSample).toBe(25_748_766);
    expect(w.trainableParams).toBe(421_642);
    expect(w.layers.find((l) => l.name === 'conv2')!.outputShape).toEqual([14, 14, 64]);
    model.dispose();
  });

  it('counts depthwise and separable convolutions, batch norm, dropout, pooling and activation layers', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.depthwiseConv2d({ name: 'dw', inputShape: [8, 8, 3], kernelSize: 3, depthMultiplier: 2, padding: 'same' }),
        tf.layers.separableConv2d({ name: 'sep', kernelSize: 3, filters: 4, activation: 'sigmoid' }),
        tf.layers.batchNormalization({ name: 'bn' }),
        tf.layers.reLU({ name: 'relu' }),
        tf.layers.activation({ name: 'softmax', activation: 'softmax' }),
        tf.layers.averagePooling2d({ name: 'avg', poolSize: 2 }),
        tf.layers.dropout({ name: 'drop', rate: 0.5 }),
        tf.layers.globalAveragePooling2d({ name: 'gap' }),
      ],
    });
    const by = Object.fromEntries(countModelWork(model).layers.map((l) => [l.name, l]));
    // depthwise: 8 x 8 x (3 x 2) outputs, each 3 x 3 multiply-adds + bias.
    expect(by['dw']!.forwardFlops).toBe(8 * 8 * 6 * (18 + 1));
    // separable, valid: 6 x 6 outputs; depthwise 6 channels x 3 x 3, then pointwise 6 -> 4 + bias + sigmoid (4).
    expect(by['sep']!.forwardFlops).toBe(6 * 6 * 6 * 18 + 6 * 6 * 4 * (2 * 6 + 1 + 4));
    // batch norm: 4 per element; training adds 4 for the batch statistics, and gamma/beta make backward 2x.
    expect(by['bn']!.forwardFlops).toBe(4 * 144);
    expect(by['bn']!.trainingFlops).toBe(3 * 8 * 144);
    expect([by['relu']!.forwardFlops, by['softmax']!.forwardFlops]).toEqual([144, 5 * 144]);
    expect(by['relu']!.trainingFlops).toBe(2 * 144);
    expect(by['avg']!.forwardFlops).toBe(3 * 3 * 4 * 4);
    // dropout: free at inference, the mask in training (forward and backward).
    expect([by['drop']!.forwardFlops, by['drop']!.trainingFlops]).toEqual([0, 2 * 36]);
    expect(by['gap']!.forwardFlops).toBe(36);
    model.dispose();
  });

  it('an unknown layer class is STRATA_ERR_WORK_UNKNOWN_LAYER naming the layer and its class', () => {
    const model = tf.sequential({ layers: [tf.layers.simpleRNN({ name: 'rnn', inputShape: [5, 3], units: 4 })] });
    try {
      countModelWork(model);
      expect.unreachable();
    } catch (err) {
      expect(isStrataError(err, 'STRATA_ERR_WORK_UNKNOWN_LAYER')).toBe(true);
      expect((err as { details: unknown }).details).toMatchObject({ layer: 'rnn', className: 'SimpleRNN' });
    }
    model.dispose();
  });
});
