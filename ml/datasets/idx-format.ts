import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { StrataError } from '../../common/strata-error.js';

/** A parsed IDX file (the format MNIST ships in). */
export interface IdxArray {
  dims: number[];
  data: Uint8Array | Float32Array;
}

const TYPE_UBYTE = 0x08;

function bad(file: string, why: string): StrataError {
  return new StrataError('STRATA_ERR_DATASET_FILE', `${file}: not a valid IDX file (${why})`, { file });
}

/**
 * Reads an IDX file (optionally gzip-compressed). Unsigned bytes stay bytes;
 * every other element type becomes float32.
 */
export function readIdxFile(file: string): IdxArray {
  if (!existsSync(file)) throw new StrataError('STRATA_ERR_DATASET_MISSING', `${file}: file not found`, { file });
  let buf = readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch {
      throw bad(file, 'corrupt gzip stream');
    }
  }
  if (buf.length < 4) throw bad(file, 'shorter than its header');
  if (buf[0] !== 0 || buf[1] !== 0) throw bad(file, 'bad magic number');
  const type = buf[2]!;
  const rank = buf[3]!;
  if (rank < 1 || rank > 4) throw bad(file, `unsupported rank ${rank}`);
  const headerBytes = 4 + 4 * rank;
  if (buf.length < headerBytes) throw bad(file, 'shorter than its header');
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const widths: Record<number, number> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };
  const width = widths[type];
  if (width === undefined) throw bad(file, `unknown element type 0x${type.toString(16)}`);
  if (buf.length !== headerBytes + count * width) {
    throw bad(file, `header declares ${dims.join('x')} elements (${headerBytes + count * width} bytes) but the file has ${buf.length}`);
  }
  if (type === TYPE_UBYTE) return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + headerBytes, count).slice() };
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = headerBytes + i * width;
    data[i] = type === 0x09 ? buf.readInt8(at)
      : type === 0x0b ? buf.readInt16BE(at)
        : type === 0x0c ? buf.readInt32BE(at)
          : type === 0x0d ? buf.readFloatBE(at)
            : buf.readDoubleBE(at);
  }
  return { dims, data };
}
