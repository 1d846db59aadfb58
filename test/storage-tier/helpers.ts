import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SampleInput } from '../../storage-tier/index.js';

/** Deterministic uniform [0, 1) generator (mulberry32). */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TempDir {
  dir: string;
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix = 'strata-storage-test-'): TempDir {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, file: (name) => path.join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A 784-byte MNIST-like sample whose bytes encode (label, n) so it can be recognised later. */
export function pixelSample(task: number, label: number, n: number): SampleInput {
  const features = new Uint8Array(784);
  for (let i = 0; i < features.length; i++) features[i] = (label * 31 + n * 7 + i) & 0xff;
  return { task, label, features, shape: [28, 28] };
}

export function samplesOfClasses(task: number, labels: readonly number[], perClass: number): SampleInput[] {
  const out: SampleInput[] = [];
  for (let n = 0; n < perClass; n++) for (const label of labels) out.push(pixelSample(task, label, n));
  return out;
}
