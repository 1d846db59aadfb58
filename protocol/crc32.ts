import * as zlib from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial). Uses node's native
 * `zlib.crc32` (Node >= 20.15) and falls back to a slicing-by-8 table
 * implementation on older 20.x releases. `initial` continues a running CRC,
 * so `crc32(b, crc32(a)) === crc32(a ++ b)`.
 */
export type Crc32 = (data: Uint8Array, initial?: number) => number;

const POLY = 0xedb88320;

// 8 tables of 256 entries: table k maps a byte to its CRC advanced k more bytes.
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** Pure-JS slicing-by-8 CRC-32; exported for tests and for runtimes without zlib.crc32. */
export function crc32Js(data: Uint8Array, initial = 0): number {
  const t = TABLES;
  let crc = ~initial >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const a = (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    crc =
      t[7 * 256 + (a & 0xff)]! ^
      t[6 * 256 + ((a >>> 8) & 0xff)]! ^
      t[5 * 256 + ((a >>> 16) & 0xff)]! ^
      t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + data[i + 4]!]! ^
      t[2 * 256 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) {
    crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

export const crc32: Crc32 =
  typeof native === 'function' ? (data, initial = 0) => native(data, initial) >>> 0 : crc32Js;

/** Which implementation `crc32` uses here. */
export const CRC32_IMPLEMENTATION: 'zlib' | 'js' = typeof native === 'function' ? 'zlib' : 'js';
