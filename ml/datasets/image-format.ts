import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../../common/strata-error.js';

type Sharp = typeof import('sharp').default;
let sharpModule: Sharp | undefined;
/**
 * sharp (libvips) loads on first use: processes that never touch images
 * never map it. Its operation cache is turned off (for the whole process):
 * a data set decodes every file once, and looking each one up in the cache
 * cost a fifth of the decode rate on 28x28 PNGs.
 */
async function loadSharp(): Promise<Sharp> {
  if (sharpModule === undefined) {
    sharpModule = (await import('sharp')).default;
    sharpModule.cache(false);
  }
  return sharpModule;
}

/** What images decode to: [height, width, channels], channels 1 (grey) or 3 (RGB). */
export type ImageShape = readonly [number, number, 1 | 3];

export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.png', '.jpg', '.jpeg']);

/**
 * One split's images: class folder names (in class-id order) and each file
 * with its class id, in file-name order across classes (natural order, ties
 * by class), so an export that numbers its files keeps its sample order.
 */
export interface ImageFolder {
  classes: string[];
  files: { file: string; label: number }[];
}

/** Folder names in class-id order: natural order, so `2` comes before `10`. */
export function sortClassNames(names: readonly string[]): string[] {
  return [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * Lists DIR/<class>/* images. `classes` fixes the class ids (the training
 * split's); without it they are this folder's, in `sortClassNames` order.
 * Hidden files are skipped; any other file that is not PNG or JPEG is an error.
 */
export function listImageFolder(dir: string, classes?: readonly string[]): ImageFolder {
  if (!existsSync(dir)) throw new StrataError('STRATA_ERR_DATASET_MISSING', `${dir}: image folder not found`, { file: dir });
  const found = sortClassNames(readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(path.join(dir, n)).isDirectory()));
  if (found.length === 0) throw new StrataError('STRATA_ERR_DATASET_FILE', `${dir}: no class folders (expected ${dir}/<class>/<image>)`, { file: dir });
  const order = classes ?? found;
  const ids = new Map(order.map((c, i) => [c, i]));
  const files: ImageFolder['files'] = [];
  for (const name of found) {
    const label = ids.get(name);
    if (label === undefined) {
      throw new StrataError('STRATA_ERR_DATASET_FILE', `${path.join(dir, name)}: class '${name}' is not one of the training classes (${order.join(', ')})`, { file: path.join(dir, name) });
    }
    if (label > 255) throw new StrataError('STRATA_ERR_DATASET_FILE', `${path.join(dir, name)}: more than 256 classes`, { file: path.join(dir, name) });
    const classDir = path.join(dir, name);
    for (const f of readdirSync(classDir).sort()) {
      if (f.startsWith('.')) continue;
      const file = path.join(classDir, f);
      if (!IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase())) {
        throw new StrataError('STRATA_ERR_DATASET_FILE', `${file}: not a PNG or JPEG image (by its extension)`, { file, image: file });
      }
      files.push({ file, label });
    }
  }
  files.sort((a, b) => path.basename(a.file).localeCompare(path.basename(b.file), 'en', { numeric: true }) || a.label - b.label);
  return { classes: [...order], files };
}

/** The size and channels (1 for grey, else 3) an image file has. */
export async function probeImageFile(file: string): Promise<ImageShape> {
  try {
    const sharp = await loadSharp();
    const m = await sharp(file).metadata();
    if (m.width === undefined || m.height === undefined) throw new Error('no dimensions');
    const grey = m.channels === 1 || m.channels === 2 || m.space === 'b-w';
    return [m.height, m.width, grey ? 1 : 3];
  } catch (err) {
    throw new StrataError('STRATA_ERR_DATASET_FILE', `${file}: cannot read the image (${(err as Error).message})`, { file, image: file }, { cause: err });
  }
}

/**
 * Decodes one PNG or JPEG to `shape`: resized to height x width (stretched
 * to fill, as tf.image.resizeBilinear does), transparency flattened onto
 * black, converted to grey or RGB. Returns height x width x channels bytes,
 * row-major HWC, in `out` at `offset` when given.
 *
 * @throws StrataError `STRATA_ERR_DATASET_FILE` naming the image.
 */
export async function decodeImageFile(file: string, shape: ImageShape, out?: Uint8Array, offset = 0): Promise<Uint8Array> {
  // The file is read on the event loop's own I/O (libuv's pool stays free for the decodes).
  return decodeImage(await readFile(file), file, shape, out, offset);
}

/** `decodeImageFile` for an image already read: `bytes` of the image file `file` (named in errors). */
export async function decodeImage(bytes: Uint8Array, file: string, shape: ImageShape, out?: Uint8Array, offset = 0): Promise<Uint8Array> {
  const [h, w, c] = shape;
  const sharp = await loadSharp();
  let data: Buffer;
  try {
    const r = await sharp(bytes, { failOn: 'error' })
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .resize(w, h, { fit: 'fill' })
      .toColourspace(c === 1 ? 'b-w' : 'srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (r.info.channels !== c || r.info.width !== w || r.info.height !== h) {
      throw new Error(`decoded to ${r.info.height}x${r.info.width}x${r.info.channels}, expected ${h}x${w}x${c}`);
    }
    data = r.data;
  } catch (err) {
    throw new StrataError('STRATA_ERR_DATASET_FILE', `${file}: cannot decode the image (${(err as Error).message})`, { file, image: file }, { cause: err });
  }
  const target = out ?? new Uint8Array(h * w * c);
  target.set(data, out === undefined ? 0 : offset);
  return out === undefined ? target : target.subarray(offset, offset + h * w * c);
}

/**
 * Decodes `files` into one byte array (`files.length x h x w x c`), with
 * up to `parallel` decodes in flight (default 32; sharp runs them on libuv's threads).
 */
export async function decodeImageFiles(files: readonly string[], shape: ImageShape, parallel = 32): Promise<Uint8Array> {
  const size = shape[0] * shape[1] * shape[2];
  const out = new Uint8Array(files.length * size);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) await decodeImageFile(files[i]!, shape, out, i * size);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, files.length) }, worker));
  return out;
}
