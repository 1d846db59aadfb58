import { Rng } from '../rng.js';
import type { Dataset, DataSplit } from './dataset.js';

export interface SyntheticOptions {
  /** Default 3000. */ trainCount?: number;
  /** Default 1000. */ testCount?: number;
  /** Default 10. */ numClasses?: number;
  /** Default 28 (images are side x side x 1, like MNIST). */ side?: number;
  /** Default 7. */ seed?: number;
}

/**
 * A small generated data set for fast tests: each class is a random blob
 * pattern; samples are that pattern shifted by up to a pixel, with noise.
 * Learnable (an MLP gets well above chance in one epoch) but not trivial.
 */
export function syntheticDataset(options: SyntheticOptions = {}): Dataset {
  const trainCount = options.trainCount ?? 3000;
  const testCount = options.testCount ?? 1000;
  const numClasses = options.numClasses ?? 10;
  const side = options.side ?? 28;
  const rng = new Rng(options.seed ?? 7);
  const size = side * side;
  const prototypes: Float32Array[] = [];
  for (let c = 0; c < numClasses; c++) {
    const p = new Float32Array(size);
    for (let blob = 0; blob < 4; blob++) {
      const cy = 3 + rng.int(side - 6);
      const cx = 3 + rng.int(side - 6);
      const r = 2 + rng.next() * 3;
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          const d = Math.hypot(y - cy, x - cx);
          if (d < r) p[y * side + x] = Math.min(1, p[y * side + x]! + 1 - d / r);
        }
      }
    }
    prototypes.push(p);
  }
  const make = (count: number): DataSplit => {
    const features = new Uint8Array(count * size);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const c = i % numClasses;
      labels[i] = c;
      const p = prototypes[c]!;
      const dy = rng.int(3) - 1;
      const dx = rng.int(3) - 1;
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          const sy = y - dy;
          const sx = x - dx;
          const v = sy >= 0 && sy < side && sx >= 0 && sx < side ? p[sy * side + sx]! : 0;
          const noisy = v * 0.8 + rng.next() * 0.35;
          features[i * size + y * side + x] = Math.max(0, Math.min(255, Math.round(noisy * 255)));
        }
      }
    }
    // Shuffle so the split is not ordered by class.
    const order = Array.from({ length: count }, (_, i) => i);
    rng.shuffle(order);
    const f2 = new Uint8Array(count * size);
    const l2 = new Uint8Array(count);
    order.forEach((src, dst) => {
      f2.set(features.subarray(src * size, (src + 1) * size), dst * size);
      l2[dst] = labels[src]!;
    });
    return { features: f2, labels: l2, count };
  };
  return {
    name: 'synthetic',
    inputShape: [side, side, 1],
    featureSize: size,
    numClasses,
    scale: 1 / 255,
    train: make(trainCount),
    test: make(testCount),
  };
}
