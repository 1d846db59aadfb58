import { createHash } from 'node:crypto';
import { ProtocolError } from './error-codes.js';

/** One tensor in a flat weight vector, in the order it appears in the vector. */
export interface LayoutEntry {
  readonly name: string;
  readonly shape: readonly number[];
}

export type WeightsLayout = readonly LayoutEntry[];

/** 8 bytes as 16 lowercase hex characters: what messages and weight frames carry. */
export const LAYOUT_HASH_HEX_LENGTH = 16;
export const LAYOUT_HASH_PATTERN = /^[0-9a-f]{16}$/;

function badLayout(message: string, details: Record<string, unknown>): ProtocolError {
  return new ProtocolError('STRATA_ERR_BAD_LAYOUT', message, details);
}

/** Total float32 elements of a layout; validates names and dims. */
export function layoutElementCount(layout: WeightsLayout): number {
  if (layout.length === 0) throw badLayout('weights layout is empty', {});
  const seen = new Set<string>();
  let total = 0;
  layout.forEach((entry, index) => {
    if (typeof entry.name !== 'string' || entry.name.length === 0) {
      throw badLayout(`layout entry ${index} has no name`, { index });
    }
    if (seen.has(entry.name)) throw badLayout(`layout entry name "${entry.name}" repeats`, { index, name: entry.name });
    seen.add(entry.name);
    let size = 1;
    for (const dim of entry.shape) {
      if (!Number.isInteger(dim) || dim < 1) {
        throw badLayout(`layout entry "${entry.name}" has a bad dimension ${String(dim)}`, { index, name: entry.name, shape: [...entry.shape] });
      }
      size *= dim;
    }
    total += size;
  });
  if (!Number.isSafeInteger(total)) throw badLayout('weights layout is too large', { total });
  return total;
}

/**
 * First 8 bytes of SHA-256 over a canonical JSON form of the layout (names,
 * shapes, order, dtype). Order matters: it fixes where each tensor sits in
 * the flat vector, so the same tensors in another order hash differently.
 */
export function computeLayoutHash(layout: WeightsLayout): string {
  layoutElementCount(layout);
  const canonical = JSON.stringify(['strata-layout/1', 'float32', layout.map((e) => [e.name, [...e.shape]])]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, LAYOUT_HASH_HEX_LENGTH);
}

/** Hash and element count together: what a round assignment announces. */
export function describeLayout(layout: WeightsLayout): { layoutHash: string; elementCount: number } {
  return { layoutHash: computeLayoutHash(layout), elementCount: layoutElementCount(layout) };
}
