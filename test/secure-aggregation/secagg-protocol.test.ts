import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SecAggCoordinatorMessage } from '../../protocol/index.js';
import { FIELD_PRIME, quantizationBound, quantizationScale } from '../../secure-aggregation/field.js';
import { expandMask } from '../../secure-aggregation/mask-prg.js';
import { NeighbourGraph } from '../../secure-aggregation/neighbour-graph.js';
import { SecAggClient } from '../../secure-aggregation/secagg-client.js';
import { SecAggRound } from '../../secure-aggregation/secagg-round.js';
import { reconstruct, split } from '../../secure-aggregation/shamir.js';

const log = pino({ level: 'silent' });

describe('secure aggregation primitives', () => {
  it('Shamir: any t shares reconstruct, over GF(2^521 - 1)', () => {
    const secret = Buffer.from('0123456789abcdef0123456789abcdef');
    const shares = split(secret, [1, 2, 3, 4, 5], 3);
    expect(reconstruct([shares[0]!, shares[2]!, shares[4]!], 32)!.equals(secret)).toBe(true);
    expect(reconstruct([shares[3]!, shares[1]!, shares[0]!], 32)!.equals(secret)).toBe(true);
    expect(reconstruct([shares[0]!, shares[1]!], 32)?.equals(secret) ?? false).toBe(false);
  });

  it('the PRG is deterministic per seed and differs across seeds', () => {
    const a = expandMask(Buffer.alloc(32, 1), 1000);
    expect(expandMask(Buffer.alloc(32, 1), 1000)).toEqual(a);
    expect(expandMask(Buffer.alloc(32, 2), 1000)).not.toEqual(a);
  });

  it('the neighbour graph is k-regular and symmetric', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `a${i}`);
    const g = new NeighbourGraph(ids, 6, 42);
    for (const id of ids) {
      expect(g.neighbours(id)).toHaveLength(6);
      for (const n of g.neighbours(id)) expect(g.neighbours(n)).toContain(id);
    }
  });
});

/** Runs a round in memory: `drop` leave after their masked upload, `silent` never upload. */
function runRound(n: number, numParams: number, opts: { afterUpload?: Set<number>; beforeUpload?: Set<number>; neighbours?: number; outsideFieldFirst?: number }) {
  const ids = Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);
  const clients = new Map(ids.map((id) => [id, new SecAggClient(id, 7)]));
  const outbox: Array<[string, SecAggCoordinatorMessage]> = [];
  const refused: string[] = [];
  let done = false;
  const round = new SecAggRound({
    roundId: 7, numParams, seed: 3, range: 100, log, neighbours: opts.neighbours,
    send: (id, m) => outbox.push([id, m]), refuse: (id) => refused.push(id), unmasked: () => { done = true; }, failed: (e) => { throw e; },
  });
  for (const id of ids) round.join(id);
  const updates = ids.map((_, i) => Float32Array.from({ length: numParams }, (_, k) => Math.sin(i * 31 + k) * 0.5));
  const weights = ids.map((_, i) => 10 + i);
  const pump = (): void => {
    while (outbox.length > 0) {
      const [id, m] = outbox.shift()!;
      const c = clients.get(id)!;
      if (m.type === 'secagg-setup') round.message(id, c.setup(m));
      else if (m.type === 'secagg-relay') c.relay(m);
      else round.message(id, c.unmask(m));
    }
  };
  for (const id of ids) round.message(id, clients.get(id)!.keys());
  pump();
  ids.forEach((id, i) => {
    if (opts.beforeUpload?.has(i)) { round.leave(id); return; }
    const w = updates[i]!.map((v) => v * weights[i]!);
    const payload = clients.get(id)!.mask(w, weights[i]!).payload;
    if (opts.outsideFieldFirst === i) {
      // A word outside the field is refused, naming the first one, and adds nothing: the right upload still makes the sum.
      const bad = payload.slice();
      bad[3] = FIELD_PRIME;
      bad[9] = 2 ** 32 - 1;
      expect(() => round.addMasked(id, bad)).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FRAME', details: expect.objectContaining({ reason: 'field', index: 3 }) }));
    }
    round.addMasked(id, payload);
  });
  ids.forEach((id, i) => { if (opts.afterUpload?.has(i)) round.leave(id); });
  round.startUnmask();
  pump();
  expect(done).toBe(true);
  const included = ids.map((_, i) => i).filter((i) => !opts.beforeUpload?.has(i));
  const W = included.reduce((s, i) => s + weights[i]!, 0);
  const plain = new Float64Array(numParams);
  for (const i of included) for (let k = 0; k < numParams; k++) plain[k]! += updates[i]![k]! * weights[i]!;
  const result = round.result();
  let maxErr = 0;
  // The bound is on the decoded sum; the aggregate is then rounded to float32 (half an ulp more).
  for (let k = 0; k < numParams; k++) maxErr = Math.max(maxErr, Math.abs(result[k]! - plain[k]! / W) - Math.abs(plain[k]! / W) * 2 ** -24);
  return { maxErr, bound: round.quantizationBound, refused, W, totalWeight: round.totalWeight };
}

describe('SecAgg+ round in memory', () => {
  it('the unmasked sum equals the plain weighted mean within the quantization bound', () => {
    const r = runRound(8, 500, {});
    expect(r.totalWeight).toBe(r.W);
    expect(r.maxErr).toBeLessThanOrEqual(r.bound);
    expect(r.bound).toBe(quantizationBound(8, quantizationScale(8, 100)) / r.W);
  });

  it('refuses an upload with a word outside the field without touching the sum', () => {
    const r = runRound(6, 200, { outsideFieldFirst: 2 });
    expect(r.maxErr).toBeLessThanOrEqual(r.bound);
  });

  it('survives parties leaving before and after their masked upload (sparse graph)', () => {
    const r = runRound(12, 300, { neighbours: 8, beforeUpload: new Set([5]), afterUpload: new Set([0, 7, 9]) });
    expect(r.maxErr).toBeLessThanOrEqual(r.bound);
  });
});
