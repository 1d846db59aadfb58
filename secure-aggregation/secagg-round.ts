import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import { ProtocolError, type SecAggAgentMessage, type SecAggCoordinatorMessage, type SecAggKeysMessage, type SecAggSharesMessage, type SecAggUnmaskSharesMessage } from '../protocol/index.js';
import { addVectorMod, decodeInteger, firstOutsideField, quantizationBound, quantizationScale } from './field.js';
import { privateKeyFrom, shareCommitment } from './key-agreement.js';
import { applyMask } from './mask-prg.js';
import { NeighbourGraph, defaultNeighbours, shareThreshold } from './neighbour-graph.js';
import { pairSign, pairwiseSeed } from './secagg-client.js';
import { reconstruct, shareFromBytes, type Share } from './shamir.js';

export type SecAggStage = 'keys' | 'shares' | 'masking' | 'unmasking' | 'done' | 'failed';

/**
 * Default quantization range of a weighted update's coordinates (samples x
 * delta): a device with 512 samples keeps coordinates of its delta up to 2
 * exactly, larger ones are clipped (and counted in its log).
 */
export const DEFAULT_SECAGG_RANGE = 1024;

/** Fewest parties a secure-aggregation round runs with (below it a sum says too much about each). */
export const MIN_SECAGG_PARTIES = 3;

export interface SecAggRoundOptions {
  roundId: number;
  numParams: number;
  /** Seeds the neighbour graph. */
  seed: number;
  /** Neighbours per party (k); default `defaultNeighbours(n)`. */
  neighbours?: number | undefined;
  /** Coordinates of a weighted update are clipped to +-range before quantization. */
  range: number;
  /** Extra absolute room in a summed coordinate (noise added in shares). */
  headroom?: number;
  log: Logger;
  send(clientId: string, message: SecAggCoordinatorMessage): void;
  /** A coded error for one party (it is refused; the round goes on without it where it can). */
  refuse(clientId: string, err: ProtocolError): void;
  /** Unmasking is done: `result()` holds the aggregate. */
  unmasked(): void;
  failed(err: StrataError): void;
}

interface Party {
  encryptionKey: string;
  maskKey: string;
}

/**
 * The coordinator's side of one secure-aggregation round (SecAgg+): the
 * parties advertise keys; the round fixes its random k-regular neighbour
 * graph and tells each its neighbours; it relays the sealed shares each
 * party dealt (keeping only their commitments); it folds each masked upload
 * into one running sum mod p and lets the upload go; after the uploads it
 * asks each surviving party for shares — of the self-mask seeds of the
 * parties whose upload is in the sum, of the mask keys of those that dealt
 * but did not upload — checks each against its dealer's commitment
 * (STRATA_ERR_SECAGG_BAD_SHARE: that party's shares are dropped),
 * reconstructs the seeds and removes their masks. It only ever holds the
 * masked sum, never one party's update.
 *
 * It is also the round's `UpdateAggregator`: `result()` is the weighted
 * mean, decoded from the unmasked sum (weights travel summed, as the last
 * element).
 */
export class SecAggRound {
  readonly buffersUpdates = false;
  readonly #o: SecAggRoundOptions;
  #stage: SecAggStage = 'keys';
  readonly #joined = new Set<string>();
  readonly #left = new Set<string>();
  readonly #parties = new Map<string, Party>();
  #graph: NeighbourGraph | undefined;
  #threshold = 0;
  #scale = 1;
  #range: number;
  /** Dealers (U2) and their commitments, by `${dealer}|${holder}`. */
  readonly #dealt = new Map<string, SecAggSharesMessage>();
  readonly #commitments = new Map<string, { self: string; key: string }>();
  /** Parties whose masked upload is in the sum (U3). */
  readonly #uploaded = new Set<string>();
  readonly #sum: Uint32Array;
  #awaiting = new Set<string>();
  readonly #shares = new Map<string, Share[]>();
  #result: Float32Array | undefined;
  #totalWeight = 0;
  #bound = Number.NaN;

  constructor(o: SecAggRoundOptions) {
    this.#o = o;
    this.#range = o.range;
    this.#sum = new Uint32Array(o.numParams + 1);
  }

  get stage(): SecAggStage { return this.#stage; }
  get roundId(): number { return this.#o.roundId; }
  /** Parties may still join (no graph yet). */
  get accepting(): boolean { return this.#stage === 'keys'; }
  get count(): number { return this.#uploaded.size; }
  get totalWeight(): number { return this.#totalWeight; }
  /** Neighbours per party and shares needed per seed, once the graph is fixed. */
  get graph(): { parties: number; neighbours: number; threshold: number } | undefined {
    return this.#graph === undefined ? undefined : { parties: this.#graph.members.length, neighbours: this.#graph.degree, threshold: this.#threshold };
  }
  get scale(): number { return this.#scale; }
  get range(): number { return this.#range; }
  /** After `result()`: the worst-case absolute error of a coordinate of the mean from quantization. */
  get quantizationBound(): number { return this.#bound; }

  /** A party was assigned the round. */
  join(clientId: string): void {
    if (this.#stage !== 'keys') throw new StrataError('STRATA_ERR_STATE', `secure aggregation round ${this.roundId}: joining in stage ${this.#stage}`, { state: this.#stage });
    this.#joined.add(clientId);
    this.#left.delete(clientId);
  }

  /** A party is gone (disconnected, or refused). */
  leave(clientId: string): void {
    if (!this.#joined.has(clientId) || this.#left.has(clientId)) return;
    this.#left.add(clientId);
    this.#awaiting.delete(clientId);
    this.#advance();
  }

  message(clientId: string, m: SecAggAgentMessage): void {
    if (m.roundId !== this.roundId) throw new ProtocolError('STRATA_ERR_STALE_ROUND', `secure aggregation message for round ${m.roundId}; round ${this.roundId} is open`, { roundId: m.roundId });
    if (!this.#joined.has(clientId) || this.#left.has(clientId)) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'not a party of this secure aggregation round', { roundId: m.roundId });
    if (m.type === 'secagg-keys') this.#keys(clientId, m);
    else if (m.type === 'secagg-shares') this.#dealing(clientId, m);
    else this.#unmaskShares(clientId, m);
  }

  #keys(id: string, m: SecAggKeysMessage): void {
    if (this.#stage !== 'keys' || this.#parties.has(id)) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', `secagg-keys in stage ${this.#stage}`, { roundId: m.roundId });
    if (m.encryptionKey === m.maskKey) throw new ProtocolError('STRATA_ERR_SECAGG_BAD_SHARE', 'the two keys of a party must differ', { roundId: m.roundId });
    this.#parties.set(id, { encryptionKey: m.encryptionKey, maskKey: m.maskKey });
    this.#advance();
  }

  #dealing(id: string, m: SecAggSharesMessage): void {
    const graph = this.#graph;
    if (this.#stage !== 'shares' || graph === undefined || this.#dealt.has(id)) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', `secagg-shares in stage ${this.#stage}`, { roundId: m.roundId });
    const neighbours = graph.neighbours(id);
    const boxes = new Set(m.boxes.map((b) => b.to));
    const committed = new Set(m.commitments.map((c) => c.holder));
    if (boxes.size !== m.boxes.length || committed.size !== m.commitments.length || neighbours.length !== boxes.size || neighbours.length !== committed.size
      || neighbours.some((n) => !boxes.has(n) || !committed.has(n))) {
      this.#drop(id, new ProtocolError('STRATA_ERR_SECAGG_BAD_SHARE', 'secagg-shares must hold one box and one commitment for each neighbour', { roundId: m.roundId }));
      return;
    }
    this.#dealt.set(id, m);
    for (const c of m.commitments) this.#commitments.set(`${id}|${c.holder}`, { self: c.self, key: c.key });
    this.#advance();
  }

  /** Parties that dealt and may still upload (neither uploaded nor gone). */
  get pendingUploads(): number {
    let n = 0;
    for (const id of this.#dealt.keys()) if (!this.#uploaded.has(id) && !this.#left.has(id)) n++;
    return n;
  }

  /** Whether `clientId` may upload its masked update now. */
  canUpload(clientId: string): boolean {
    return this.#stage === 'masking' && this.#dealt.has(clientId) && !this.#uploaded.has(clientId) && !this.#left.has(clientId);
  }

  /** Folds one masked upload (numParams + 1 field elements) into the sum; the caller lets it go. */
  addMasked(clientId: string, payload: Uint32Array): void {
    if (!this.canUpload(clientId)) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'no masked upload is expected from this party now', { roundId: this.roundId });
    if (payload.length !== this.#sum.length) {
      throw new ProtocolError('STRATA_ERR_BAD_UPDATE_LENGTH', `masked update has ${payload.length} elements, expected ${this.#sum.length}`, { expected: this.#sum.length, received: payload.length });
    }
    // Checked whole before anything is added: a refused upload leaves the sum as it was.
    const bad = firstOutsideField(payload);
    if (bad >= 0) throw new ProtocolError('STRATA_ERR_BAD_FRAME', `masked element ${bad} is not in the field`, { reason: 'field', index: bad });
    addVectorMod(this.#sum, payload);
    this.#uploaded.add(clientId);
  }

  /** Ends the uploads and asks the survivors for shares. */
  startUnmask(): void {
    if (this.#stage !== 'masking') throw new StrataError('STRATA_ERR_STATE', `secure aggregation round ${this.roundId}: unmasking in stage ${this.#stage}`, { state: this.#stage });
    this.#stage = 'unmasking';
    if (this.#uploaded.size < 2) {
      this.#fail(`${this.#uploaded.size} masked upload(s): a sum of fewer than 2 would reveal an update`);
      return;
    }
    const graph = this.#graph!;
    for (const id of this.#uploaded) {
      if (this.#left.has(id)) continue;
      const survivors: string[] = [];
      const dropped: string[] = [];
      for (const n of graph.neighbours(id)) {
        if (this.#uploaded.has(n)) survivors.push(n);
        else if (this.#dealt.has(n)) dropped.push(n);
      }
      this.#awaiting.add(id);
      this.#o.send(id, { type: 'secagg-unmask', roundId: this.roundId, survivors, dropped });
    }
    this.#advance();
  }

  /** At the round's deadline while unmasking: finish with the shares in hand (parties still silent are dropped). */
  finishNow(): void {
    if (this.#stage !== 'unmasking') return;
    this.#awaiting.clear();
    this.#advance();
  }

  #unmaskShares(id: string, m: SecAggUnmaskSharesMessage): void {
    if (this.#stage !== 'unmasking' || !this.#awaiting.has(id)) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', `secagg-unmask-shares in stage ${this.#stage}`, { roundId: m.roundId });
    this.#awaiting.delete(id);
    const graph = this.#graph!;
    const x = graph.shareX(id);
    const accepted: Array<[string, Share]> = [];
    for (const s of m.shares) {
      const want = this.#uploaded.has(s.of) ? 'self' : this.#dealt.has(s.of) ? 'key' : undefined;
      const commitment = this.#commitments.get(`${s.of}|${id}`);
      const bytes = Buffer.from(s.share, 'base64url');
      if (want !== s.kind || commitment === undefined || shareCommitment(this.roundId, s.of, id, s.kind, bytes) !== commitment[s.kind]) {
        // One wrong share taints them all: none of this party's is used; its neighbours' other shares still reconstruct.
        this.#o.refuse(id, new ProtocolError('STRATA_ERR_SECAGG_BAD_SHARE', `the ${s.kind} share of ${s.of} does not match its dealer's commitment`, { roundId: this.roundId, of: s.of, kind: s.kind }));
        this.#o.log.warn({ code: 'STRATA_ERR_SECAGG_BAD_SHARE', agentId: id, roundId: this.roundId, of: s.of }, 'wrong secure-aggregation share; that party\'s shares are not used');
        this.#advance();
        return;
      }
      accepted.push([`${s.kind}|${s.of}`, { x, y: shareFromBytes(bytes) }]);
    }
    for (const [key, share] of accepted) {
      const list = this.#shares.get(key);
      if (list === undefined) this.#shares.set(key, [share]);
      else list.push(share);
    }
    this.#advance();
  }

  #drop(id: string, err: ProtocolError): void {
    this.#o.refuse(id, err);
    this.leave(id);
  }

  /** Moves to the next stage once every party still in the round has done its part. */
  #advance(): void {
    if (this.#stage === 'keys') {
      const live = [...this.#joined].filter((id) => !this.#left.has(id));
      // Fewer than the minimum: wait for more parties (the round tops up) or the deadline.
      if (live.length < MIN_SECAGG_PARTIES || live.some((id) => !this.#parties.has(id))) return;
      this.#fixGraph(live);
    } else if (this.#stage === 'shares') {
      const live = this.#graph!.members.filter((id) => !this.#left.has(id));
      if (live.some((id) => !this.#dealt.has(id))) return;
      this.#relay();
    } else if (this.#stage === 'unmasking') {
      if (this.#awaiting.size > 0) return;
      this.#unmask();
    }
  }

  #fixGraph(members: string[]): void {
    if (members.length < MIN_SECAGG_PARTIES) {
      this.#fail(`${members.length} parties advertised keys; secure aggregation needs at least ${MIN_SECAGG_PARTIES}`);
      return;
    }
    const n = members.length;
    const graph = new NeighbourGraph(members, this.#o.neighbours ?? defaultNeighbours(n), this.#o.seed);
    this.#graph = graph;
    this.#threshold = shareThreshold(graph.degree);
    this.#scale = quantizationScale(n, this.#range, this.#o.headroom ?? 0);
    this.#stage = 'shares';
    this.#o.log.debug({ roundId: this.roundId, parties: n, neighbours: graph.degree, threshold: this.#threshold, scale: this.#scale }, 'secure aggregation graph fixed');
    for (const id of graph.members) {
      this.#o.send(id, {
        type: 'secagg-setup', roundId: this.roundId, x: graph.shareX(id), threshold: this.#threshold, range: this.#range, scale: this.#scale,
        neighbours: graph.neighbours(id).map((nb) => ({ agentId: nb, x: graph.shareX(nb), ...this.#parties.get(nb)! })),
      });
    }
  }

  #relay(): void {
    const graph = this.#graph!;
    this.#stage = 'masking';
    for (const id of graph.members) {
      if (!this.#dealt.has(id) || this.#left.has(id)) continue;
      const boxes: Array<{ from: string; box: string }> = [];
      for (const n of graph.neighbours(id)) {
        const box = this.#dealt.get(n)?.boxes.find((b) => b.to === id);
        if (box !== undefined) boxes.push({ from: n, box: box.box });
      }
      this.#o.send(id, { type: 'secagg-relay', roundId: this.roundId, boxes });
    }
    // The boxes are relayed: only the commitments stay.
    for (const m of this.#dealt.values()) m.boxes.length = 0;
  }

  #unmask(): void {
    const graph = this.#graph!;
    const need = (kind: 'self' | 'key', of: string): Buffer | undefined => {
      const shares = this.#shares.get(`${kind}|${of}`) ?? [];
      return shares.length < this.#threshold ? undefined : reconstruct(shares.slice(0, this.#threshold), 32);
    };
    const sum = this.#sum;
    for (const id of this.#uploaded) {
      const seed = need('self', id);
      if (seed === undefined) return this.#fail(`too few shares of ${id}'s self-mask seed`);
      applyMask(sum, seed, -1);
    }
    for (const d of this.#dealt.keys()) {
      if (this.#uploaded.has(d)) continue;
      const masked = graph.neighbours(d).filter((n) => this.#uploaded.has(n));
      if (masked.length === 0) continue;
      const raw = need('key', d) ?? undefined;
      const key = raw === undefined ? undefined : privateKeyFrom(raw, this.#parties.get(d)!.maskKey);
      if (key === undefined) return this.#fail(`cannot reconstruct the mask key of ${d}, which dealt but did not upload`);
      for (const j of masked) applyMask(sum, pairwiseSeed(key, this.#parties.get(j)!.maskKey, this.roundId, d, j), pairSign(j, d) === 1 ? -1 : 1);
    }
    this.#shares.clear();
    const n = this.#o.numParams;
    const weight = decodeInteger(sum[n]!);
    if (!(weight > 0)) return this.#fail(`the unmasked total weight is ${weight}`);
    const out = new Float32Array(n);
    const f = 1 / (this.#scale * weight);
    for (let i = 0; i < n; i++) out[i] = decodeInteger(sum[i]!) * f;
    this.#result = out;
    this.#totalWeight = weight;
    this.#bound = quantizationBound(this.#uploaded.size, this.#scale) / weight;
    this.#stage = 'done';
    this.#o.unmasked();
  }

  #fail(why: string): void {
    this.#stage = 'failed';
    this.#awaiting.clear();
    this.#o.failed(new StrataError('STRATA_ERR_SECAGG_ABORTED', `secure aggregation round ${this.roundId}: ${why}`, { roundId: this.roundId }));
  }

  /** Parties whose masked update is in the sum. */
  get contributors(): ReadonlySet<string> {
    return this.#uploaded;
  }

  add(): void {
    throw new StrataError('STRATA_ERR_STATE', 'a secure aggregation round takes masked uploads (addMasked), not updates', { state: this.#stage });
  }

  result(): Float32Array {
    if (this.#result === undefined) throw new StrataError('STRATA_ERR_EMPTY_ROUND', `secure aggregation round ${this.roundId} is not unmasked (stage ${this.#stage})`);
    return this.#result.slice();
  }
}
