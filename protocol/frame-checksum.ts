/**
 * The checksum of a weight frame (frame version 2): 32 bits over the
 * header's first 36 bytes and the payload, computed ~4x faster than the
 * CRC-32 of version 1 (zlib's, about 5 GB/s here), which was the largest
 * single cost of taking in an update.
 *
 * Definition (all arithmetic mod 2^32; P1..P5 are xxHash32's primes):
 * - round(acc, w) = rotl(acc + w * P2, 13) * P1 (xxHash32's round).
 * - 16 lanes start at lane_k = (k + 1) * P1 + P2. Payload word j (little-endian
 *   uint32; a last partial word zero-padded) goes through lane j mod 16.
 * - The header's nine words go, in order, through one more accumulator
 *   starting at P5.
 * - fold = byteLength(payload) + rotl(header, 17) + sum over k of rotl(lane_k, k + 1),
 *   then xxHash32's avalanche.
 * Every step a word goes through is a bijection of the lane (P1 and P2 are
 * odd), so any change confined to one word of the payload or of the header
 * always changes the checksum; other corruption goes unseen with
 * probability about 2^-32, as with a CRC-32 (which also catches every burst
 * of up to 32 bits, a guarantee this checksum trades for speed).
 *
 * The payload's bulk runs in WebAssembly SIMD (wasm/frame-checksum.wat: the
 * 16 lanes as four v128 accumulators), in 256 KB chunks copied into the
 * module's fixed memory; JavaScript runs the same loop where SIMD is missing
 * (`frameChecksumJs`, also the reference the tests hold the kernel to).
 */
import { ownMemoryKernel } from '../common/wasm-module.js';
import { FRAME_CHECKSUM_WASM } from './wasm/frame-checksum-wasm.js';

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P5 = 0x165667b1;
const LANES = 16;
/** Bytes of header the checksum covers (the checksum field follows them). */
export const CHECKSUMMED_HEADER_BYTES = 36;
const CHUNK = 256 * 1024;
const STATE = 0;
const DATA = 64;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, w: number): number {
  return Math.imul(rotl((acc + Math.imul(w, P2)) | 0, 13), P1);
}

function initialLanes(): Uint32Array {
  const lanes = new Uint32Array(LANES);
  for (let k = 0; k < LANES; k++) lanes[k] = (Math.imul(k + 1, P1) + P2) >>> 0;
  return lanes;
}

/**
 * Payload bytes [from, end) through their lanes in JavaScript, `from` a
 * multiple of 4: whole words by index, then the zero-padded partial word.
 */
function lanesJs(lanes: Uint32Array, payload: Uint8Array, from: number): void {
  const whole = payload.length >>> 2;
  let j = from >>> 2;
  if (LITTLE_ENDIAN && payload.byteOffset % 4 === 0) {
    const words = new Uint32Array(payload.buffer, payload.byteOffset, whole);
    for (; j < whole; j++) lanes[j & 15] = round(lanes[j & 15]!, words[j]!);
  } else {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (; j < whole; j++) lanes[j & 15] = round(lanes[j & 15]!, view.getUint32(4 * j, true));
  }
  if (payload.length % 4 !== 0) {
    let partial = 0;
    for (let b = 4 * whole, s = 0; b < payload.length; b++, s += 8) partial |= payload[b]! << s;
    lanes[whole & 15] = round(lanes[whole & 15]!, partial);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function finish(header: Uint8Array, payloadBytes: number, lanes: Uint32Array): number {
  if (header.length < CHECKSUMMED_HEADER_BYTES) throw new RangeError(`frame checksum: header of ${header.length} bytes (needs ${CHECKSUMMED_HEADER_BYTES})`);
  const view = new DataView(header.buffer, header.byteOffset, CHECKSUMMED_HEADER_BYTES);
  let h = P5;
  for (let i = 0; i < CHECKSUMMED_HEADER_BYTES; i += 4) h = round(h, view.getUint32(i, true));
  let f = (payloadBytes + rotl(h, 17)) | 0;
  for (let k = 0; k < LANES; k++) f = (f + rotl(lanes[k]!, k + 1)) | 0;
  f ^= f >>> 15;
  f = Math.imul(f, P2);
  f ^= f >>> 13;
  f = Math.imul(f, P3);
  f ^= f >>> 16;
  return f >>> 0;
}

/** The frame checksum in JavaScript alone: the definition, and the path where WebAssembly SIMD is missing. */
export function frameChecksumJs(header: Uint8Array, payload: Uint8Array): number {
  const lanes = initialLanes();
  lanesJs(lanes, payload, 0);
  return finish(header, payload.length, lanes);
}

interface Kernel {
  lanes: (p: number, n: number, state: number) => void;
  state: Uint32Array;
  data: Uint8Array;
}

let kernel: Kernel | null | undefined;

function simdKernel(): Kernel | null {
  if (kernel === undefined) {
    const e = ownMemoryKernel<Pick<Kernel, 'lanes'>>(FRAME_CHECKSUM_WASM, DATA + CHUNK);
    kernel = e === null ? null : { lanes: e.lanes, state: new Uint32Array(e.memory.buffer, STATE, LANES), data: new Uint8Array(e.memory.buffer, DATA, CHUNK) };
  }
  return kernel;
}

/** Below this many payload bytes the JavaScript loop is as fast as copying into the kernel's memory. */
const SIMD_MIN_BYTES = 1024;

/** The checksum (see the module comment) of a frame's first 36 header bytes and its payload. */
export function frameChecksum(header: Uint8Array, payload: Uint8Array): number {
  const k = payload.length >= SIMD_MIN_BYTES ? simdKernel() : null;
  if (k === null) return frameChecksumJs(header, payload);
  const bulk = payload.length - (payload.length % (4 * LANES));
  k.state.set(initialLanes());
  for (let at = 0; at < bulk; at += CHUNK) {
    const n = Math.min(CHUNK, bulk - at);
    k.data.set(payload.subarray(at, at + n));
    k.lanes(DATA, n, STATE);
  }
  const lanes = Uint32Array.from(k.state);
  lanesJs(lanes, payload, bulk);
  return finish(header, payload.length, lanes);
}

/** Which implementation `frameChecksum` uses for large payloads here. */
export function frameChecksumImplementation(): 'wasm-simd' | 'js' {
  return simdKernel() === null ? 'js' : 'wasm-simd';
}
