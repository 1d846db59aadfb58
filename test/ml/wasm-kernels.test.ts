import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../ml/backend.js';
import { biasRelu, maxPoolReluGrad, reluGrad, rowSums } from '../../ml/fast-step/heap-loops.js';
import { WasmHeap } from '../../ml/fast-step/wasm-heap.js';
import { backendSimdKernels } from '../../ml/wasm-simd/simd-kernels.js';
import { Rng } from '../../ml/rng.js';
import { random, relativeError, runOn } from './kernel-check.js';
import { conv2DBackpropFilterConv, conv2DBackpropFilterDirect, conv2DBackpropFilterIm2col, conv2DBackpropFilterRows } from '../../ml/wasm-kernels/conv2d-backprop-filter.js';

const convCases: { x: [number, number, number, number]; k: [number, number]; co: number; stride: number; pad: 'same' | 'valid' }[] = [
  { x: [2, 8, 8, 3], k: [3, 3], co: 4, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: [3, 3], co: 4, stride: 1, pad: 'valid' },
  { x: [3, 9, 7, 2], k: [3, 3], co: 5, stride: 2, pad: 'same' },
  { x: [3, 9, 7, 2], k: [3, 2], co: 5, stride: 2, pad: 'valid' },
  { x: [4, 12, 12, 6], k: [5, 5], co: 8, stride: 1, pad: 'same' },
  { x: [1, 10, 11, 4], k: [2, 4], co: 3, stride: 2, pad: 'same' },
  { x: [2, 16, 16, 8], k: [3, 3], co: 16, stride: 2, pad: 'valid' },
  { x: [3, 14, 14, 32], k: [3, 3], co: 64, stride: 1, pad: 'same' },
  { x: [2, 11, 9, 12], k: [3, 2], co: 5, stride: 2, pad: 'same' },
  { x: [4, 28, 28, 1], k: [3, 3], co: 32, stride: 1, pad: 'same' },
  { x: [2, 9, 10, 3], k: [3, 3], co: 8, stride: 2, pad: 'valid' },
];

function convOutShape(c: (typeof convCases)[number]): number[] {
  const info = tf.backend_util.computeConv2DInfo(c.x, [c.k[0], c.k[1], c.x[3], c.co], c.stride, 1, c.pad);
  return info.outShape;
}

describe('Strata wasm kernels match the cpu backend', () => {
  beforeAll(async () => {
    const info = await initBackend({ backend: 'wasm' });
    expect(info.kernels).toBe('strata');
    await import('@tensorflow/tfjs-backend-cpu');
  });

  it.each(convCases)('Conv2DBackpropFilter x=$x k=$k stride=$stride $pad', async (c) => {
    const rng = new Rng(c.x.reduce((a, b) => a * 31 + b, c.stride));
    const x = random(c.x, rng);
    const dy = random(convOutShape(c), rng);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: [c.k[0], c.k[1], c.x[3], c.co] };
    const wasm = await runOn('wasm', 'Conv2DBackpropFilter', { x, dy }, attrs);
    const cpu = await runOn('cpu', 'Conv2DBackpropFilter', { x, dy }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-4);
  });

  it.each(convCases)('every filter-gradient formulation (dilated conv, im2col GEMM, direct SIMD, patch-rows GEMM) x=$x stride=$stride $pad', async (c) => {
    const rng = new Rng(c.x.reduce((a, b) => a * 29 + b, c.stride));
    const x = random(c.x, rng);
    const dy = random(convOutShape(c), rng);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: [c.k[0], c.k[1], c.x[3], c.co] };
    const cpu = await runOn('cpu', 'Conv2DBackpropFilter', { x, dy }, attrs);
    for (const fn of [conv2DBackpropFilterConv, conv2DBackpropFilterIm2col, conv2DBackpropFilterDirect, conv2DBackpropFilterRows]) {
      const xt = tf.tensor(x.data, x.shape);
      const dyt = tf.tensor(dy.data, dy.shape);
      const info = fn({ inputs: { x: xt, dy: dyt }, backend: tf.backend(), attrs: attrs as unknown as tf.NamedAttrMap });
      const out = tf.engine().makeTensorFromTensorInfo(info);
      expect(relativeError(out.dataSync() as Float32Array, cpu)).toBeLessThan(1e-4);
      tf.dispose([xt, dyt, out]);
    }
  });

  it.each(convCases)('Conv2DBackpropInput x=$x k=$k stride=$stride $pad', async (c) => {
    const rng = new Rng(c.x.reduce((a, b) => a * 17 + b, c.stride));
    const filter = random([c.k[0], c.k[1], c.x[3], c.co], rng);
    const dy = random(convOutShape(c), rng);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x };
    const wasm = await runOn('wasm', 'Conv2DBackpropInput', { dy, filter }, attrs);
    const cpu = await runOn('cpu', 'Conv2DBackpropInput', { dy, filter }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-4);
  });

  it.each([
    { x: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' },
    { x: [2, 7, 9, 4], size: 3, stride: 2, pad: 'same' },
    { x: [1, 6, 6, 2], size: 3, stride: 1, pad: 'valid' },
  ] as const)('MaxPoolGrad x=$x size=$size stride=$stride $pad', async (c) => {
    const rng = new Rng(c.size * 7 + c.stride);
    const input = random([...c.x], rng);
    const info = tf.backend_util.computePool2DInfo([...c.x] as [number, number, number, number], c.size, c.stride, 1, c.pad);
    const dy = random(info.outShape, rng);
    const attrs = { filterSize: c.size, strides: c.stride, pad: c.pad };
    const wasm = await runOn('wasm', 'MaxPoolGrad', { dy, input }, attrs);
    const cpu = await runOn('cpu', 'MaxPoolGrad', { dy, input }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  it.each([
    { a: [64, 784], b: [64, 256], ta: true, tb: false },
    { a: [64, 128], b: [256, 128], ta: false, tb: true },
    { a: [3, 5, 7], b: [3, 6, 5], ta: true, tb: true },
    { a: [20, 30], b: [30, 10], ta: false, tb: false },
  ])('BatchMatMul a=$a b=$b transposeA=$ta transposeB=$tb', async (c) => {
    const rng = new Rng(c.a[0]! + c.b[1]!);
    const a = random(c.a, rng);
    const b = random(c.b, rng);
    const attrs = { transposeA: c.ta, transposeB: c.tb };
    const wasm = await runOn('wasm', 'BatchMatMul', { a, b }, attrs);
    const cpu = await runOn('cpu', 'BatchMatMul', { a, b }, attrs);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  it('Identity (tf.clone) shares memory and the clone outlives its source', () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const a = tf.tensor([1, 2, 3]);
    const ids = backend.numDataIds();
    const b = tf.clone(a);
    expect(backend.numDataIds()).toBe(ids);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
    expect(backend.numDataIds()).toBe(ids - 1);
  });

  it('kernels leak no tensors', async () => {
    const rng = new Rng(3);
    const c = convCases[2]!;
    const x = random(c.x, rng);
    const dy = random(convOutShape(c), rng);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: [c.k[0], c.k[1], c.x[3], c.co] };
    await runOn('wasm', 'Conv2DBackpropFilter', { x, dy }, attrs);
    const before = tf.memory().numTensors;
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    for (let i = 0; i < 3; i++) await runOn('wasm', 'Conv2DBackpropFilter', { x, dy }, attrs);
    expect(tf.memory().numTensors).toBe(before);
    expect(backend.numDataIds()).toBe(ids);
  });
});

describe("Strata's SIMD loops (kernels.wat) match the cpu backend and the JS loops", () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    await import('@tensorflow/tfjs-backend-cpu');
  });

  it.each([
    { x: [2, 8, 8, 4] },
    { x: [3, 7, 9, 8] },
    { x: [1, 28, 28, 32] },
  ])('maxPool2x2Grad x=$x (no ReLU) against MaxPoolGrad on cpu', async (c) => {
    const simd = backendSimdKernels();
    expect(simd).toBeDefined();
    const rng = new Rng(c.x[1]! * 13 + c.x[3]!);
    const input = random(c.x, rng);
    const info = tf.backend_util.computePool2DInfo(c.x as [number, number, number, number], 2, 2, 1, 'valid');
    const dy = random(info.outShape, rng);
    const cpu = await runOn('cpu', 'MaxPoolGrad', { dy, input }, { filterSize: 2, strides: 2, pad: 'valid' });
    const heap = new WasmHeap(tf.backend());
    const x = tf.tensor(input.data, input.shape);
    const g = tf.tensor(dy.data, dy.shape);
    const dx = heap.zeros(c.x);
    simd!.maxPool2x2Grad(heap.at(x) * 4, heap.at(g) * 4, heap.at(dx) * 4, 0, c.x[0]!, c.x[1]!, c.x[2]!, c.x[3]!, 0);
    const out = heap.f32().slice(heap.at(dx), heap.at(dx) + cpu.length);
    expect(relativeError(out, cpu)).toBeLessThan(1e-6);
    heap.free(dx);
    tf.dispose([x, g]);
  });

  it('maxPool2x2Grad with the ReLU and bias gradient fused, and reluGrad, equal the JS loops', () => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(5);
    const shape = [4, 10, 12, 16];
    const input = random(shape, rng);
    // ReLU outputs: many exact zeros, so whole windows tie at 0 and pass no gradient.
    for (let i = 0; i < input.data.length; i++) input.data[i] = Math.max(0, input.data[i]! - 0.5);
    const dy = random([4, 5, 6, 16], rng);
    const heap = new WasmHeap(tf.backend());
    const x = tf.tensor(input.data, shape);
    const g = tf.tensor(dy.data, dy.shape);
    const [dxSimd, dbSimd, dxJs, dbJs] = [heap.zeros(shape), heap.zeros([16]), heap.alloc(shape), heap.alloc([16])];
    simd.maxPool2x2Grad(heap.at(x) * 4, heap.at(g) * 4, heap.at(dxSimd) * 4, heap.at(dbSimd) * 4, 4, 10, 12, 16, 1);
    maxPoolReluGrad(heap.f32(), heap.at(x), heap.at(g), heap.at(dxJs), {
      batch: 4, inH: 10, inW: 12, channels: 16, outH: 5, outW: 6, sizeH: 2, sizeW: 2, strideH: 2, strideW: 2, padTop: 0, padLeft: 0,
    }, true, heap.at(dbJs));
    const h = heap.f32();
    const read = (t: tf.TensorInfo, n: number) => h.slice(heap.at(t), heap.at(t) + n);
    expect(read(dxSimd, input.data.length)).toEqual(read(dxJs, input.data.length));
    expect(relativeError(read(dbSimd, 16), read(dbJs, 16))).toBeLessThan(1e-6);
    // reluGrad on an odd length (the scalar tail) against the JS loop.
    const n = 1001;
    const [ga, gb] = [heap.alloc([n]), heap.alloc([n])];
    h.set(dy.data.subarray(0, n), heap.at(ga));
    h.set(dy.data.subarray(0, n), heap.at(gb));
    simd.reluGrad(heap.at(ga) * 4, heap.at(x) * 4, n);
    reluGrad(heap.f32(), heap.at(gb), heap.at(x), n);
    expect(read(ga, n)).toEqual(read(gb, n));
    heap.free(dxSimd, dbSimd, dxJs, dbJs, ga, gb);
    tf.dispose([x, g]);
  });

  it.each([{ rows: 7, cols: 64 }, { rows: 5, cols: 30 }])('biasRelu and rowSums ($rows x $cols) equal the JS loops', ({ rows, cols }) => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(rows * cols);
    const heap = new WasmHeap(tf.backend());
    const n = rows * cols;
    const [a, b, bias, sa, sb] = [heap.alloc([n]), heap.alloc([n]), heap.alloc([rows]), heap.alloc([rows]), heap.alloc([rows])];
    const h = heap.f32();
    const data = random([n], rng).data;
    h.set(data, heap.at(a));
    h.set(data, heap.at(b));
    h.set(random([rows], rng).data, heap.at(bias));
    simd.biasRelu(heap.at(a) * 4, heap.at(bias) * 4, rows, cols, 1);
    biasRelu(h, heap.at(b), heap.at(bias), rows, cols, true);
    expect(h.slice(heap.at(a), heap.at(a) + n)).toEqual(h.slice(heap.at(b), heap.at(b) + n));
    simd.rowSums(heap.at(a) * 4, rows, cols, heap.at(sa) * 4);
    rowSums(h, heap.at(b), rows, cols, heap.at(sb));
    expect(relativeError(h.slice(heap.at(sa), heap.at(sa) + rows), h.slice(heap.at(sb), heap.at(sb) + rows))).toBeLessThan(1e-6);
    heap.free(a, b, bias, sa, sb);
  });

  it.each([
    { m: 1, k: 1, n: 1 }, { m: 3, k: 5, n: 7 }, { m: 4, k: 8, n: 8 }, { m: 5, k: 9, n: 13 }, { m: 10, k: 128, n: 33 },
    { m: 7, k: 3, n: 31 }, { m: 13, k: 17, n: 4 }, { m: 6, k: 2, n: 12 }, { m: 64, k: 96, n: 40 },
  ])('gemm $m x $k x $n (A as it lies or transposed, C = or C +=, rows strided) against BatchMatMul on cpu', async ({ m, k, n }) => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(m * 1000 + k * 10 + n);
    const a = random([m, k], rng);
    const b = random([k, n], rng);
    const c0 = random([m, n], rng);
    const product = await runOn('cpu', 'BatchMatMul', { a: { data: a.data, shape: [1, m, k] }, b: { data: b.data, shape: [1, k, n] } }, { transposeA: false, transposeB: false });
    // Row strides past the rows (the filter gradient multiplies blocks of wider matrices), garbage in between.
    const [pa, pb, pc] = [3, 5, 2];
    const heap = new WasmHeap(tf.backend());
    for (const flags of [0, 1, 2, 3]) {
      const transposed = (flags & 1) !== 0;
      const lda = (transposed ? m : k) + pa;
      const ldb = n + pb;
      const ldc = n + pc;
      const [ta, tb, tc] = [heap.alloc([(transposed ? k : m) * lda]), heap.alloc([k * ldb]), heap.alloc([m * ldc])];
      const h = heap.f32();
      h.fill(Number.NaN, heap.at(ta), heap.at(ta) + (transposed ? k : m) * lda);
      h.fill(Number.NaN, heap.at(tb), heap.at(tb) + k * ldb);
      h.fill(7, heap.at(tc), heap.at(tc) + m * ldc);
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) h[heap.at(ta) + (transposed ? j * lda + i : i * lda + j)] = a.data[i * k + j]!;
      for (let j = 0; j < k; j++) for (let q = 0; q < n; q++) h[heap.at(tb) + j * ldb + q] = b.data[j * n + q]!;
      for (let i = 0; i < m; i++) for (let q = 0; q < n; q++) h[heap.at(tc) + i * ldc + q] = c0.data[i * n + q]!;
      simd.gemm(heap.at(ta) * 4, heap.at(tb) * 4, heap.at(tc) * 4, m, k, n, lda, ldb, ldc, flags);
      const got = new Float32Array(m * n);
      const want = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let q = 0; q < n; q++) {
          got[i * n + q] = h[heap.at(tc) + i * ldc + q]!;
          want[i * n + q] = product[i * n + q]! + ((flags & 2) !== 0 ? c0.data[i * n + q]! : 0);
        }
        // The padding between C's rows is never written.
        for (let q = n; q < ldc && i < m - 1; q++) expect(h[heap.at(tc) + i * ldc + q]).toBe(7);
      }
      expect(relativeError(got, want)).toBeLessThan(1e-5);
      heap.free(ta, tb, tc);
    }
  });

  it('addTo adds over any length (the scalar tail too)', () => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(11);
    const heap = new WasmHeap(tf.backend());
    for (const n of [1, 4, 7, 1003]) {
      const x = random([n], rng).data;
      const y = random([n], rng).data;
      const [dst, src] = [heap.alloc([n]), heap.alloc([n])];
      heap.f32().set(x, heap.at(dst));
      heap.f32().set(y, heap.at(src));
      simd.addTo(heap.at(dst) * 4, heap.at(src) * 4, n);
      const h = heap.f32();
      expect(h.slice(heap.at(dst), heap.at(dst) + n)).toEqual(Float32Array.from(x, (v, i) => v + y[i]!));
      heap.free(dst, src);
    }
  });

  it('transpose moves every float of any shape (whole 4x4 blocks and the edges)', () => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(12);
    const heap = new WasmHeap(tf.backend());
    for (const [rows, cols] of [[1, 1], [4, 4], [3, 5], [32, 784], [33, 10], [10, 33], [256, 32], [7, 1]] as const) {
      const x = random([rows, cols], rng).data;
      const [src, dst] = [heap.alloc([rows, cols]), heap.alloc([cols, rows])];
      heap.f32().set(x, heap.at(src));
      simd.transpose(heap.at(src) * 4, heap.at(dst) * 4, rows, cols);
      const want = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c * rows + r] = x[r * cols + c]!;
      expect(heap.f32().slice(heap.at(dst), heap.at(dst) + rows * cols)).toEqual(want);
      heap.free(src, dst);
    }
  });

  it('bytesToFloatsT gives the batch builder\'s floats, transposed, for any shape', () => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(14);
    const heap = new WasmHeap(tf.backend());
    const scale = 1 / 255;
    const table = heap.alloc([256]);
    heap.f32().set(Float32Array.from({ length: 256 }, (_, v) => v * scale), heap.at(table));
    for (const [rows, cols] of [[1, 1], [4, 8], [33, 784], [6, 3]] as const) {
      const bytes = Uint8Array.from({ length: rows * cols }, () => Math.floor(rng.next() * 256));
      const [src, dst] = [heap.alloc([Math.ceil((rows * cols) / 4)]), heap.alloc([cols, rows])];
      new Uint8Array(heap.f32().buffer, heap.at(src) * 4, rows * cols).set(bytes);
      simd.bytesToFloatsT(heap.at(src) * 4, heap.at(table) * 4, heap.at(dst) * 4, rows, cols);
      const want = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c * rows + r] = bytes[r * cols + c]! * scale;
      expect(heap.f32().slice(heap.at(dst), heap.at(dst) + rows * cols)).toEqual(want);
      heap.free(src, dst);
    }
    heap.free(table);
  });

  it('adam with a second gradient equals addTo then adam, bit for bit', () => {
    const simd = backendSimdKernels()!;
    const rng = new Rng(13);
    const heap = new WasmHeap(tf.backend());
    const n = 1003;
    const init = ['w', 'g', 'g2', 'm', 'v'].map(() => random([n], rng).data.map(Math.abs));
    const run = (fused: boolean): Float32Array[] => {
      const t = init.map((d) => {
        const info = heap.alloc([n]);
        heap.f32().set(d, heap.at(info));
        return info;
      });
      const out = heap.alloc([n]);
      const [w, g, g2, m, v] = t.map((i) => heap.at(i) * 4) as [number, number, number, number, number];
      if (!fused) simd.addTo(g, g2, n);
      simd.adam(w, g, m, v, heap.at(out) * 4, n, 0.01, 1.5, 0.9, 0.999, 1e-7, fused ? g2 : 0);
      const read = [out, t[3]!, t[4]!].map((i) => heap.f32().slice(heap.at(i), heap.at(i) + n));
      heap.free(out, ...t);
      return read;
    };
    expect(run(true)).toEqual(run(false));
  });
});
