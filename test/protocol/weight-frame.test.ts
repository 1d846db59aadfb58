import { describe, expect, it } from 'vitest';
import {
  CRC32_IMPLEMENTATION,
  ProtocolError,
  WEIGHT_FRAME_HEADER_BYTES,
  computeLayoutHash,
  crc32,
  crc32Js,
  decodeWeightFrame,
  decodeWeightFrameHeader,
  describeLayout,
  encodeWeightFrame,
  findNonFinite,
  frameChecksum,
  frameChecksumImplementation,
  frameChecksumJs,
  layoutElementCount,
  type WeightFrameInit,
} from '../../protocol/index.js';

const layout = [
  { name: 'dense1/kernel', shape: [784, 128] },
  { name: 'dense1/bias', shape: [128] },
  { name: 'dense2/kernel', shape: [128, 10] },
  { name: 'dense2/bias', shape: [10] },
];
const layoutHash = computeLayoutHash(layout);
const init: WeightFrameInit = { kind: 'update', roundId: 12, modelVersion: 11, layoutHash, numSamples: 640 };

function randomWeights(n: number, seed = 1): Float32Array {
  const w = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = s / 2 ** 31 - 1;
  }
  return w;
}

function errorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

describe('crc32', () => {
  it('matches the standard check value and the JS fallback', () => {
    const check = Buffer.from('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Js(check)).toBe(0xcbf43926);
    expect(crc32Js(new Uint8Array(0))).toBe(0);
    const data = new Uint8Array(randomWeights(1001).buffer, 1, 3999); // odd offset and length
    expect(crc32Js(data)).toBe(crc32(data));
    expect(crc32Js(data.subarray(77), crc32Js(data.subarray(0, 77)))).toBe(crc32(data));
    expect(['zlib', 'js']).toContain(CRC32_IMPLEMENTATION);
  });
});

describe('layout hash', () => {
  it('is stable, 16 hex chars, sensitive to names, shapes and order', () => {
    expect(layoutHash).toMatch(/^[0-9a-f]{16}$/);
    expect(computeLayoutHash(layout.map((e) => ({ ...e, shape: [...e.shape] })))).toBe(layoutHash);
    expect(computeLayoutHash([...layout].reverse())).not.toBe(layoutHash);
    expect(computeLayoutHash([{ name: 'dense1/kernel', shape: [128, 784] }, ...layout.slice(1)])).not.toBe(layoutHash);
    expect(computeLayoutHash([{ name: 'x', shape: [784, 128] }, ...layout.slice(1)])).not.toBe(layoutHash);
    expect(describeLayout(layout)).toEqual({ layoutHash, elementCount: 784 * 128 + 128 + 128 * 10 + 10 });
  });

  it('rejects bad layouts with STRATA_ERR_BAD_LAYOUT', () => {
    expect(errorOf(() => layoutElementCount([])).code).toBe('STRATA_ERR_BAD_LAYOUT');
    expect(errorOf(() => layoutElementCount([{ name: 'a', shape: [0] }])).code).toBe('STRATA_ERR_BAD_LAYOUT');
    expect(errorOf(() => layoutElementCount([{ name: 'a', shape: [2.5] }])).code).toBe('STRATA_ERR_BAD_LAYOUT');
    expect(errorOf(() => computeLayoutHash([{ name: 'a', shape: [1] }, { name: 'a', shape: [2] }])).code).toBe('STRATA_ERR_BAD_LAYOUT');
  });
});

describe('weight frames', () => {
  it('round-trips a small frame with every header field', () => {
    const weights = Float32Array.from([0, -1.5, 3.25, 1e-30, -0, 65504]);
    const buf = encodeWeightFrame(init, weights);
    expect(buf.length).toBe(WEIGHT_FRAME_HEADER_BYTES + 4 * weights.length);
    expect(buf.subarray(0, 4).toString('latin1')).toBe('STRW');
    const { header, weights: out } = decodeWeightFrame(buf);
    expect(header).toMatchObject({ frameVersion: 2, kind: 'update', roundId: 12, modelVersion: 11, layoutHash, numSamples: 640, elementCount: 6 });
    expect(Array.from(out)).toEqual(Array.from(weights));
    expect(decodeWeightFrameHeader(buf)).toEqual(header);
  });

  it.each(['model', 'update', 'delta'] as const)('round-trips kind %s', (kind) => {
    const buf = encodeWeightFrame({ ...init, kind }, new Float32Array(3));
    expect(decodeWeightFrame(buf, { kind }).header.kind).toBe(kind);
  });

  it('round-trips 100k floats bit-exactly, as a view when aligned and a copy otherwise', () => {
    const weights = randomWeights(100_000);
    const buf = encodeWeightFrame(init, weights);
    const { header, weights: out } = decodeWeightFrame(buf, { layoutHash, elementCount: 100_000, checkFinite: true });
    expect(header.elementCount).toBe(100_000);
    expect(Buffer.from(out.buffer, out.byteOffset, out.byteLength).equals(Buffer.from(weights.buffer))).toBe(true);
    expect(out.buffer).toBe(buf.buffer); // zero-copy view

    // Misaligned input (a frame at an odd offset inside a larger buffer) decodes via a copy.
    const shifted = Buffer.alloc(buf.length + 1);
    buf.copy(shifted, 1);
    const odd = decodeWeightFrame(shifted.subarray(1));
    expect(odd.weights.buffer).not.toBe(shifted.buffer);
    expect(Buffer.from(odd.weights.buffer).equals(Buffer.from(weights.buffer))).toBe(true);

    const copied = decodeWeightFrame(buf, { copy: true }).weights;
    expect(copied.buffer).not.toBe(buf.buffer);
    expect(copied[99_999]).toBe(weights[99_999]);
  });

  it('accepts ArrayBuffer and fragment arrays', () => {
    const buf = encodeWeightFrame(init, randomWeights(10));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    expect(decodeWeightFrame(ab).header.elementCount).toBe(10);
    expect(decodeWeightFrame([buf.subarray(0, 7), buf.subarray(7)]).header.elementCount).toBe(10);
  });

  it('truncated frame -> STRATA_ERR_BAD_FRAME (truncated)', () => {
    const buf = encodeWeightFrame(init, randomWeights(100));
    for (const cut of [0, 10, WEIGHT_FRAME_HEADER_BYTES - 1, WEIGHT_FRAME_HEADER_BYTES, buf.length - 1]) {
      const err = errorOf(() => decodeWeightFrame(buf.subarray(0, cut)));
      expect(err.code, `cut at ${cut}`).toBe('STRATA_ERR_BAD_FRAME');
      expect(err.details.reason).toBe('truncated');
    }
  });

  it('bad magic -> STRATA_ERR_BAD_FRAME (bad-magic)', () => {
    const buf = encodeWeightFrame(init, randomWeights(4));
    buf.write('XTRW', 0, 'latin1');
    const err = errorOf(() => decodeWeightFrame(buf));
    expect(err.code).toBe('STRATA_ERR_BAD_FRAME');
    expect(err.details.reason).toBe('bad-magic');
  });

  it('other frame version -> STRATA_ERR_PROTOCOL_VERSION; bad kind byte -> STRATA_ERR_BAD_FRAME', () => {
    const buf = encodeWeightFrame(init, randomWeights(4));
    for (const version of [0, 3, 255]) {
      buf[4] = version;
      const err = errorOf(() => decodeWeightFrame(buf));
      expect(err.code).toBe('STRATA_ERR_PROTOCOL_VERSION');
      expect(err.closeCode).toBe(4002);
    }
    buf[4] = 2;
    buf[5] = 9;
    expect(errorOf(() => decodeWeightFrame(buf)).details.reason).toBe('bad-kind');
  });

  it('reads version 1 frames (CRC-32), e.g. spooled by the release before, and checks their CRC', () => {
    const weights = randomWeights(5000);
    const v1 = Buffer.from(encodeWeightFrame(init, weights));
    v1[4] = 1;
    v1.writeUInt32LE(crc32(v1.subarray(WEIGHT_FRAME_HEADER_BYTES), crc32(v1.subarray(0, 36))), 36);
    const { header, weights: out } = decodeWeightFrame(v1);
    expect(header.frameVersion).toBe(1);
    expect(Buffer.from(out.buffer, out.byteOffset, out.byteLength).equals(Buffer.from(weights.buffer))).toBe(true);
    v1[WEIGHT_FRAME_HEADER_BYTES + 99]! ^= 0x10;
    expect(errorOf(() => decodeWeightFrame(v1)).code).toBe('STRATA_ERR_BAD_CHECKSUM');
  });

  it('a changed word anywhere (payload bulk, payload tail, header) -> STRATA_ERR_BAD_CHECKSUM', () => {
    // 1,003 floats: 62 blocks of 16 words for the SIMD loop, then an 11-word tail for JavaScript.
    const buf = encodeWeightFrame(init, randomWeights(1003));
    for (const at of [0, 3, 36, 39, 40, 41, 40 + 4 * 500 + 2, 40 + 4 * 991, buf.length - 1]) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(buf);
        bad[at]! ^= bit;
        const code = errorOf(() => decodeWeightFrame(bad)).code;
        // A flipped magic or version byte is refused before the checksum, with its own code.
        expect(['STRATA_ERR_BAD_CHECKSUM', 'STRATA_ERR_BAD_FRAME', 'STRATA_ERR_PROTOCOL_VERSION'], `byte ${at} bit ${bit}`).toContain(code);
        if (at >= 8) expect(code, `byte ${at} bit ${bit}`).toBe('STRATA_ERR_BAD_CHECKSUM');
      }
    }
  });

  it('checksum mismatch (payload or header) -> STRATA_ERR_BAD_CHECKSUM', () => {
    const buf = encodeWeightFrame(init, randomWeights(1000));
    const payloadFlip = Buffer.from(buf);
    payloadFlip[WEIGHT_FRAME_HEADER_BYTES + 1234]! ^= 0x01;
    expect(errorOf(() => decodeWeightFrame(payloadFlip)).code).toBe('STRATA_ERR_BAD_CHECKSUM');
    const headerFlip = Buffer.from(buf);
    headerFlip.writeUInt32LE(13, 8); // roundId tampered
    expect(errorOf(() => decodeWeightFrame(headerFlip)).code).toBe('STRATA_ERR_BAD_CHECKSUM');
    expect(decodeWeightFrameHeader(headerFlip).roundId).toBe(13); // header-only peek does not checksum
  });

  it('declared count vs bytes mismatch -> STRATA_ERR_BAD_FRAME (size-mismatch / truncated)', () => {
    const buf = encodeWeightFrame(init, randomWeights(100));
    const grown = Buffer.concat([buf, Buffer.alloc(4)]);
    expect(errorOf(() => decodeWeightFrame(grown)).details.reason).toBe('size-mismatch');
    const lying = Buffer.from(buf);
    lying.writeUInt32LE(101, 16);
    const err = errorOf(() => decodeWeightFrame(lying));
    expect(err.code).toBe('STRATA_ERR_BAD_FRAME');
    expect(err.details).toMatchObject({ reason: 'truncated', elementCount: 101 });
  });

  it('expected length / layout / round / kind mismatches get their own codes', () => {
    const buf = encodeWeightFrame(init, randomWeights(100));
    expect(errorOf(() => decodeWeightFrame(buf, { elementCount: 99 })).code).toBe('STRATA_ERR_BAD_UPDATE_LENGTH');
    const other = computeLayoutHash([{ name: 'w', shape: [100] }]);
    const layoutErr = errorOf(() => decodeWeightFrame(buf, { layoutHash: other }));
    expect(layoutErr.code).toBe('STRATA_ERR_LAYOUT_MISMATCH');
    expect(layoutErr.details).toEqual({ expected: other, received: layoutHash });
    expect(errorOf(() => decodeWeightFrame(buf, { roundId: 13 })).code).toBe('STRATA_ERR_STALE_ROUND');
    expect(errorOf(() => decodeWeightFrame(buf, { kind: 'model' })).details.reason).toBe('unexpected-kind');
    expect(decodeWeightFrame(buf, { kind: ['update', 'delta'], roundId: 12, layoutHash, elementCount: 100 }).weights.length).toBe(100);
  });

  it('declared count above maxElements -> STRATA_ERR_FRAME_TOO_LARGE (close 1009) before payload checks', () => {
    const buf = encodeWeightFrame(init, randomWeights(100));
    const head = buf.subarray(0, WEIGHT_FRAME_HEADER_BYTES); // even a bare header is refused on its declaration
    for (const frame of [buf, head]) {
      const err = errorOf(() => decodeWeightFrame(frame, { maxElements: 50 }));
      expect(err.code).toBe('STRATA_ERR_FRAME_TOO_LARGE');
      expect(err.closeCode).toBe(1009);
    }
  });

  it('encode rejects bad header fields', () => {
    expect(errorOf(() => encodeWeightFrame({ ...init, roundId: -1 }, new Float32Array(1))).code).toBe('STRATA_ERR_BAD_FRAME');
    expect(errorOf(() => encodeWeightFrame({ ...init, numSamples: 2 ** 32 }, new Float32Array(1))).code).toBe('STRATA_ERR_BAD_FRAME');
    expect(errorOf(() => encodeWeightFrame({ ...init, layoutHash: 'ABCDEF0123456789' }, new Float32Array(1))).code).toBe('STRATA_ERR_BAD_FRAME');
  });
});

describe('non-finite detection', () => {
  it('findNonFinite returns the first NaN/Infinity index or -1', () => {
    const w = randomWeights(10_000);
    expect(findNonFinite(w)).toBe(-1);
    expect(findNonFinite(new Float32Array(0))).toBe(-1);
    expect(findNonFinite(Float32Array.from([3.4e38, -3.4e38, 0, -0]))).toBe(-1);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const copy = w.slice();
      copy[7777] = bad;
      copy[9000] = bad;
      expect(findNonFinite(copy)).toBe(7777);
    }
  });

  it('decode with checkFinite -> STRATA_ERR_NON_FINITE with the index; without it, values pass through', () => {
    const w = randomWeights(500);
    w[321] = Number.NaN;
    const buf = encodeWeightFrame(init, w);
    const err = errorOf(() => decodeWeightFrame(buf, { checkFinite: true }));
    expect(err.code).toBe('STRATA_ERR_NON_FINITE');
    expect(err.closeCode).toBeNull();
    expect(err.details.index).toBe(321);
    expect(Number.isNaN(decodeWeightFrame(buf).weights[321])).toBe(true);
    w[321] = Number.NEGATIVE_INFINITY;
    expect(errorOf(() => decodeWeightFrame(encodeWeightFrame(init, w), { checkFinite: true })).details.value).toBe('-Infinity');
  });
});

describe('frame checksum (version 2)', () => {
  it('the SIMD kernel gives the JavaScript definition\'s value, at every length and alignment', () => {
    const header = Buffer.alloc(36, 0x5a);
    const bytes = new Uint8Array(randomWeights(70_000).buffer);
    expect(['wasm-simd', 'js']).toContain(frameChecksumImplementation());
    for (const length of [0, 1, 3, 4, 63, 64, 65, 1023, 1024, 1088, 4097, 262_144, 262_208, 280_000]) {
      for (const offset of [0, 1, 4]) {
        const payload = bytes.subarray(offset, offset + length);
        expect(frameChecksum(header, payload), `length ${length} offset ${offset}`).toBe(frameChecksumJs(header, payload));
      }
    }
  });

  it('is fixed: known values pin the definition (a change here is a new frame version)', () => {
    const header = Buffer.from('STRW\x02\x03\x00\x00' + '\x00'.repeat(28), 'latin1');
    const payload = new Uint8Array(Uint32Array.from({ length: 1000 }, (_, i) => i * 2654435761).buffer);
    expect(frameChecksumJs(header, new Uint8Array(0))).toBe(0x2509c49a);
    expect(frameChecksum(header, payload)).toBe(0xc4d06f39);
  });

  it('changes with every single-bit change of the payload and of the header (each word is its own lane step)', () => {
    const header = Buffer.alloc(36, 1);
    const payload = new Uint8Array(randomWeights(80).buffer); // 5 blocks of 16 words
    const base = frameChecksumJs(header, payload);
    for (let bit = 0; bit < payload.length * 8; bit++) {
      const p = Uint8Array.from(payload);
      p[bit >> 3]! ^= 1 << (bit & 7);
      if (frameChecksumJs(header, p) === base) throw new Error(`payload bit ${bit} went unseen`);
    }
    for (let bit = 0; bit < header.length * 8; bit++) {
      const h = Buffer.from(header);
      h[bit >> 3]! ^= 1 << (bit & 7);
      if (frameChecksumJs(h, payload) === base) throw new Error(`header bit ${bit} went unseen`);
    }
  });
});
