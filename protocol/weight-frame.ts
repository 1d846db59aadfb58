import { endianness } from 'node:os';
import { crc32 } from './crc32.js';
import { CHECKSUMMED_HEADER_BYTES, frameChecksum } from './frame-checksum.js';
import { ProtocolError } from './error-codes.js';
import { LAYOUT_HASH_PATTERN } from './layout-hash.js';

/**
 * Binary weight frame: a 40-byte little-endian header, then `elementCount`
 * float32 LE values. The header length is a multiple of 4, so when the frame
 * itself starts 4-aligned the payload is viewed as a Float32Array in place.
 *
 *   off size field
 *     0  4   magic 'STRW'
 *     4  1   frame version (2; version 1 frames, with a CRC-32, are still read)
 *     5  1   kind: 1 model, 2 update, 3 delta, 4 masked (uint32 field elements, secure aggregation)
 *     6  2   flags (0; reserved)
 *     8  4   roundId        uint32
 *    12  4   modelVersion   uint32 (for updates: the model they were trained from)
 *    16  4   elementCount   uint32
 *    20  4   numSamples     uint32 (aggregation weight; 0 for model frames)
 *    24  8   layout hash    (8 bytes, see layout-hash.ts)
 *    32  4   reserved (0)
 *    36  4   checksum of bytes [0, 36) and the payload (frame-checksum.ts;
 *            version 1: CRC-32 over bytes [0, 36) then the payload)
 *    40  4n  payload
 */
export const WEIGHT_FRAME_MAGIC = 'STRW';
export const WEIGHT_FRAME_VERSION = 2;
/** The version before: a CRC-32 where version 2 has its faster checksum (read, never written). */
const CRC32_FRAME_VERSION = 1;
export const WEIGHT_FRAME_HEADER_BYTES = 40;
const CHECKSUM_OFFSET = CHECKSUMMED_HEADER_BYTES;
const MAX_UINT32 = 0xffff_ffff;
const MAGIC_U32 = 0x57525453; // 'STRW' read as uint32 LE
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

export type WeightFrameKind = 'model' | 'update' | 'delta' | 'masked';
const KIND_TO_BYTE: Readonly<Record<WeightFrameKind, number>> = { model: 1, update: 2, delta: 3, masked: 4 };
const BYTE_TO_KIND: readonly (WeightFrameKind | undefined)[] = [undefined, 'model', 'update', 'delta', 'masked'];

/** A `masked` frame's payload as the uint32 field elements it carries (a view of the decoded words). */
export function maskedPayload(words: Float32Array): Uint32Array {
  return new Uint32Array(words.buffer, words.byteOffset, words.length);
}

/** What the sender chooses; the element count comes from the weights. */
export interface WeightFrameInit {
  kind: WeightFrameKind;
  roundId: number;
  modelVersion: number;
  /** 16 lowercase hex characters (computeLayoutHash). */
  layoutHash: string;
  /** Samples behind an update (its FedAvg weight). Default 0. */
  numSamples?: number;
}

export interface WeightFrameHeader {
  frameVersion: number;
  kind: WeightFrameKind;
  roundId: number;
  modelVersion: number;
  layoutHash: string;
  elementCount: number;
  numSamples: number;
  checksum: number;
}

export interface DecodedWeightFrame {
  header: WeightFrameHeader;
  /** Aliases the input buffer when alignment allows (and `copy` is not set). */
  weights: Float32Array;
}

export interface WeightFrameExpectations {
  kind?: WeightFrameKind | readonly WeightFrameKind[];
  /** Mismatch -> STRATA_ERR_STALE_ROUND. */
  roundId?: number;
  /** Mismatch -> STRATA_ERR_LAYOUT_MISMATCH. */
  layoutHash?: string;
  /** Mismatch -> STRATA_ERR_BAD_UPDATE_LENGTH. */
  elementCount?: number;
  /** Declared count above this -> STRATA_ERR_FRAME_TOO_LARGE (checked before any payload work). */
  maxElements?: number;
  /** Scan for NaN/Infinity -> STRATA_ERR_NON_FINITE. Default false. */
  checkFinite?: boolean;
  /** Always return a fresh Float32Array instead of a view. Default false. */
  copy?: boolean;
}

export type WeightFrameData = Uint8Array | ArrayBuffer | readonly Uint8Array[];

function badFrame(reason: string, message: string, details: Record<string, unknown> = {}): ProtocolError {
  return new ProtocolError('STRATA_ERR_BAD_FRAME', message, { reason, ...details });
}

function checkUint32(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_UINT32) {
    throw badFrame('bad-header-field', `weight frame ${field} must be a uint32 (got ${String(value)})`, { field });
  }
  return value;
}

function toBytes(data: WeightFrameData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return Buffer.concat(data as Uint8Array[]);
}

/** Index of the first NaN or +-Infinity, or -1. */
export function findNonFinite(weights: Float32Array): number {
  for (let i = 0, n = weights.length; i < n; i++) {
    const v = weights[i]!;
    // v - v is 0 for finite v and NaN for NaN and +-Infinity.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Encode a frame into one freshly allocated buffer (own ArrayBuffer, offset 0). */
export function encodeWeightFrame(init: WeightFrameInit, weights: Float32Array): Buffer {
  const kindByte = KIND_TO_BYTE[init.kind];
  if (kindByte === undefined) throw badFrame('bad-kind', `unknown weight frame kind ${String(init.kind)}`);
  if (typeof init.layoutHash !== 'string' || !LAYOUT_HASH_PATTERN.test(init.layoutHash)) {
    throw badFrame('bad-header-field', 'weight frame layoutHash must be 16 lowercase hex characters', { field: 'layoutHash' });
  }
  const count = checkUint32('elementCount', weights.length);
  const buf = Buffer.allocUnsafeSlow(WEIGHT_FRAME_HEADER_BYTES + 4 * count);
  buf.write(WEIGHT_FRAME_MAGIC, 0, 'latin1');
  buf.writeUInt8(WEIGHT_FRAME_VERSION, 4);
  buf.writeUInt8(kindByte, 5);
  buf.writeUInt16LE(0, 6);
  buf.writeUInt32LE(checkUint32('roundId', init.roundId), 8);
  buf.writeUInt32LE(checkUint32('modelVersion', init.modelVersion), 12);
  buf.writeUInt32LE(count, 16);
  buf.writeUInt32LE(checkUint32('numSamples', init.numSamples ?? 0), 20);
  buf.write(init.layoutHash, 24, 'hex');
  buf.writeUInt32LE(0, 32);
  if (LITTLE_ENDIAN_HOST) {
    buf.set(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength), WEIGHT_FRAME_HEADER_BYTES);
  } else {
    for (let i = 0; i < count; i++) buf.writeFloatLE(weights[i]!, WEIGHT_FRAME_HEADER_BYTES + 4 * i);
  }
  const payload = buf.subarray(WEIGHT_FRAME_HEADER_BYTES);
  buf.writeUInt32LE(frameChecksum(buf.subarray(0, CHECKSUM_OFFSET), payload), CHECKSUM_OFFSET);
  return buf;
}

/**
 * The round id a frame's header names, unchecked (undefined when the frame is
 * shorter than a header): enough to recognise a late frame before any checks.
 */
export function peekWeightFrameRoundId(data: Buffer): number | undefined {
  return data.length >= WEIGHT_FRAME_HEADER_BYTES ? data.readUInt32LE(8) : undefined;
}

/**
 * Read and check a frame's header only (magic, version, kind, declared size
 * against the bytes present) without touching the payload: lets a receiver
 * route or reject a frame before paying for the checksum.
 */
export function decodeWeightFrameHeader(data: WeightFrameData): WeightFrameHeader {
  const bytes = toBytes(data);
  if (bytes.length < WEIGHT_FRAME_HEADER_BYTES) {
    throw badFrame('truncated', `weight frame of ${bytes.length} bytes is shorter than its ${WEIGHT_FRAME_HEADER_BYTES}-byte header`, {
      byteLength: bytes.length,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, WEIGHT_FRAME_HEADER_BYTES);
  if (view.getUint32(0, true) !== MAGIC_U32) throw badFrame('bad-magic', 'not a weight frame (bad magic)');
  const frameVersion = view.getUint8(4);
  if (frameVersion !== WEIGHT_FRAME_VERSION && frameVersion !== CRC32_FRAME_VERSION) {
    throw new ProtocolError('STRATA_ERR_PROTOCOL_VERSION', `weight frame version ${frameVersion} is not supported (expected ${WEIGHT_FRAME_VERSION})`, {
      expected: WEIGHT_FRAME_VERSION,
      received: frameVersion,
    });
  }
  const kind = BYTE_TO_KIND[view.getUint8(5)];
  if (kind === undefined) throw badFrame('bad-kind', `unknown weight frame kind byte ${view.getUint8(5)}`);
  const elementCount = view.getUint32(16, true);
  const expectedBytes = WEIGHT_FRAME_HEADER_BYTES + 4 * elementCount;
  if (bytes.length !== expectedBytes) {
    throw badFrame(bytes.length < expectedBytes ? 'truncated' : 'size-mismatch', `weight frame declares ${elementCount} floats (${expectedBytes} bytes) but has ${bytes.length} bytes`, {
      elementCount,
      byteLength: bytes.length,
      expectedBytes,
    });
  }
  return {
    frameVersion,
    kind,
    roundId: view.getUint32(8, true),
    modelVersion: view.getUint32(12, true),
    elementCount,
    numSamples: view.getUint32(20, true),
    layoutHash: Buffer.from(bytes.buffer, bytes.byteOffset + 24, 8).toString('hex'),
    checksum: view.getUint32(CHECKSUM_OFFSET, true),
  };
}

/** Decode and validate a whole frame; every failure is a coded ProtocolError. */
export function decodeWeightFrame(data: WeightFrameData, expect: WeightFrameExpectations = {}): DecodedWeightFrame {
  const bytes = toBytes(data);
  // Reject an oversized declaration before anything proportional to it.
  if (expect.maxElements !== undefined && bytes.length >= WEIGHT_FRAME_HEADER_BYTES) {
    const declared = new DataView(bytes.buffer, bytes.byteOffset, WEIGHT_FRAME_HEADER_BYTES).getUint32(16, true);
    if (declared > expect.maxElements) {
      throw new ProtocolError('STRATA_ERR_FRAME_TOO_LARGE', `weight frame declares ${declared} floats, limit is ${expect.maxElements}`, {
        elementCount: declared,
        maxElements: expect.maxElements,
      });
    }
  }
  const header = decodeWeightFrameHeader(bytes);
  const payload = bytes.subarray(WEIGHT_FRAME_HEADER_BYTES);
  const head = bytes.subarray(0, CHECKSUM_OFFSET);
  const actual = header.frameVersion === CRC32_FRAME_VERSION ? crc32(payload, crc32(head)) : frameChecksum(head, payload);
  if (actual !== header.checksum) {
    throw new ProtocolError('STRATA_ERR_BAD_CHECKSUM', 'weight frame checksum mismatch', { expected: header.checksum, actual });
  }
  checkExpectations(header, expect);

  let weights: Float32Array;
  const offset = bytes.byteOffset + WEIGHT_FRAME_HEADER_BYTES;
  if (!LITTLE_ENDIAN_HOST) {
    weights = new Float32Array(header.elementCount);
    const dv = new DataView(bytes.buffer, offset, payload.length);
    for (let i = 0; i < weights.length; i++) weights[i] = dv.getFloat32(4 * i, true);
  } else if (!expect.copy && offset % 4 === 0) {
    weights = new Float32Array(bytes.buffer, offset, header.elementCount);
  } else {
    weights = new Float32Array(header.elementCount);
    new Uint8Array(weights.buffer).set(payload);
  }
  if (expect.checkFinite) {
    const index = findNonFinite(weights);
    if (index !== -1) {
      throw new ProtocolError('STRATA_ERR_NON_FINITE', `weight frame has a non-finite value at index ${index}`, {
        index,
        value: String(weights[index]),
      });
    }
  }
  return { header, weights };
}

function checkExpectations(header: WeightFrameHeader, expect: WeightFrameExpectations): void {
  if (expect.kind !== undefined) {
    const kinds: readonly WeightFrameKind[] = typeof expect.kind === 'string' ? [expect.kind] : expect.kind;
    if (!kinds.includes(header.kind)) {
      throw badFrame('unexpected-kind', `expected a ${kinds.join('/')} frame, got ${header.kind}`, { kind: header.kind, expected: kinds });
    }
  }
  if (expect.layoutHash !== undefined && header.layoutHash !== expect.layoutHash) {
    throw new ProtocolError('STRATA_ERR_LAYOUT_MISMATCH', `weight frame layout ${header.layoutHash} does not match ${expect.layoutHash}`, {
      expected: expect.layoutHash,
      received: header.layoutHash,
    });
  }
  if (expect.elementCount !== undefined && header.elementCount !== expect.elementCount) {
    throw new ProtocolError('STRATA_ERR_BAD_UPDATE_LENGTH', `weight frame has ${header.elementCount} floats, expected ${expect.elementCount}`, {
      expected: expect.elementCount,
      received: header.elementCount,
    });
  }
  if (expect.roundId !== undefined && header.roundId !== expect.roundId) {
    throw new ProtocolError('STRATA_ERR_STALE_ROUND', `weight frame is for round ${header.roundId}, the open round is ${expect.roundId}`, {
      expected: expect.roundId,
      received: header.roundId,
    });
  }
}
