import * as tf from '@tensorflow/tfjs';
import { saveModelFile } from '../../ml/models.js';

/**
 * The "user model": a tfjs Layers CNN with convolution, batch norm,
 * a depthwise convolution, max and average pooling, dropout and dense
 * layers, taking [28, 28, 1] images and ending in softmax, as a user would
 * write it (no Strata conventions).
 */
export function userCnn(options: { filters?: number; dense?: number; inputShape?: [number, number, number]; classes?: number } = {}): tf.Sequential {
  const f = options.filters ?? 16;
  return tf.sequential({
    name: 'user_cnn',
    layers: [
      tf.layers.conv2d({ name: 'conv1', inputShape: options.inputShape ?? [28, 28, 1], filters: f, kernelSize: 3, padding: 'same', activation: 'relu' }),
      // PyTorch's default momentum (0.1 there): the moving statistics settle within ~50 steps, so short federated rounds evaluate well.
      tf.layers.batchNormalization({ name: 'bn1', momentum: 0.9 }),
      tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }),
      tf.layers.depthwiseConv2d({ name: 'dw2', kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.conv2d({ name: 'pw2', filters: 2 * f, kernelSize: 1, activation: 'relu' }),
      tf.layers.averagePooling2d({ name: 'pool2', poolSize: 2 }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dropout({ name: 'drop', rate: 0.25 }),
      tf.layers.dense({ name: 'fc', units: options.dense ?? 64, activation: 'relu' }),
      tf.layers.dense({ name: 'out', units: options.classes ?? 10, activation: 'softmax' }),
    ],
  });
}

/** Saves `userCnn()` as DIR/model.json + DIR/weights.bin (through a save handler: no tfjs-node); returns the model.json path. */
export async function saveUserCnn(dir: string, options: Parameters<typeof userCnn>[0] = {}): Promise<string> {
  const model = userCnn(options);
  try {
    return await saveModelFile(model, dir);
  } finally {
    model.dispose();
  }
}
