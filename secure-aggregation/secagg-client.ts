import { randomBytes, type KeyObject } from 'node:crypto';
import { StrataError } from '../common/strata-error.js';
import { ProtocolError, type SecAggKeysMessage, type SecAggRelayMessage, type SecAggSetupMessage, type SecAggSharesMessage, type SecAggUnmaskMessage, type SecAggUnmaskSharesMessage } from '../protocol/index.js';
import { encodeInteger, encodeVector } from './field.js';
import { agreeKey, generateKeyPair, open, privateKeyBytes, seal, shareCommitment, type KeyPair } from './key-agreement.js';
import { applyMask } from './mask-prg.js';
import { SHARE_BYTES, shareFromBytes, shareToBytes, split } from './shamir.js';

/** The salt and info strings both ends of a pair derive their keys with (symmetric in the pair). */
export function pairInfo(kind: 'box' | 'mask', a: string, b: string): string {
  return a < b ? `strata-secagg-${kind}|${a}|${b}` : `strata-secagg-${kind}|${b}|${a}`;
}

export function roundSalt(roundId: number): string {
  return `strata-secagg-round-${roundId}`;
}

/** Who adds and who subtracts a pair's mask: the smaller id adds. */
export function pairSign(self: string, other: string): 1 | -1 {
  return self < other ? 1 : -1;
}

/** A masked upload: field elements, the weighted update then the weight. */
export interface MaskedUpdate {
  payload: Uint32Array;
  /** Coordinates clipped to the quantization range. */
  clipped: number;
}

/**
 * One device's part in one secure-aggregation round (SecAgg+, Bell et al.
 * 2020): fresh key pairs at assignment (`keys`); at `setup`, a self-mask
 * seed, and Shamir shares of it and of its mask private key dealt to its
 * neighbours, each sealed (AES-GCM under an X25519 + HKDF key) for one
 * neighbour, with a commitment the coordinator checks when the share is
 * revealed; at `relay`, its neighbours' sealed shares; `mask` adds the
 * self mask and a pairwise mask per neighbour that dealt (PRG-expanded
 * seeds) to the quantized weighted update; `unmask` reveals, per
 * neighbour, the self-seed share of one that uploaded or the key share of
 * one that did not — never both for one neighbour, and only once.
 */
export class SecAggClient {
  readonly agentId: string;
  readonly roundId: number;
  readonly #encryption: KeyPair;
  readonly #mask: KeyPair;
  readonly #selfSeed = randomBytes(32);
  #setup: SecAggSetupMessage | undefined;
  /** Neighbours that dealt, with the shares of their secrets this device holds. */
  readonly #held = new Map<string, { self: Buffer; key: Buffer }>();
  #relayed = false;
  #masked = false;
  #unmasked = false;

  constructor(agentId: string, roundId: number) {
    this.agentId = agentId;
    this.roundId = roundId;
    this.#encryption = generateKeyPair();
    this.#mask = generateKeyPair();
  }

  keys(): SecAggKeysMessage {
    return { type: 'secagg-keys', roundId: this.roundId, encryptionKey: this.#encryption.publicKey, maskKey: this.#mask.publicKey };
  }

  get ready(): boolean {
    return this.#relayed;
  }

  /** Deals this device's shares among its neighbours. */
  setup(m: SecAggSetupMessage): SecAggSharesMessage {
    this.#check(m.roundId);
    if (this.#setup !== undefined) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'a second secagg-setup for the round', { roundId: m.roundId });
    this.#setup = m;
    const xs = m.neighbours.map((n) => n.x);
    const t = Math.min(m.threshold, xs.length);
    const selfShares = xs.length === 0 ? [] : split(this.#selfSeed, xs, t);
    const keyShares = xs.length === 0 ? [] : split(privateKeyBytes(this.#mask.privateKey), xs, t);
    const boxes: SecAggSharesMessage['boxes'] = [];
    const commitments: SecAggSharesMessage['commitments'] = [];
    m.neighbours.forEach((n, k) => {
      const self = shareToBytes(selfShares[k]!.y);
      const key = shareToBytes(keyShares[k]!.y);
      const boxKey = agreeKey(this.#encryption.privateKey, n.encryptionKey, roundSalt(this.roundId), pairInfo('box', this.agentId, n.agentId));
      boxes.push({ to: n.agentId, box: seal(boxKey, Buffer.concat([self, key]), `${this.roundId}|${this.agentId}|${n.agentId}`).toString('base64url') });
      commitments.push({
        holder: n.agentId,
        self: shareCommitment(this.roundId, this.agentId, n.agentId, 'self', self),
        key: shareCommitment(this.roundId, this.agentId, n.agentId, 'key', key),
      });
    });
    return { type: 'secagg-shares', roundId: this.roundId, boxes, commitments };
  }

  /** Takes the shares its neighbours dealt it; it will mask against exactly these neighbours. */
  relay(m: SecAggRelayMessage): void {
    this.#check(m.roundId);
    const setup = this.#setup;
    if (setup === undefined || this.#relayed) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'secagg-relay out of order', { roundId: m.roundId });
    for (const { from, box } of m.boxes) {
      const n = setup.neighbours.find((x) => x.agentId === from);
      if (n === undefined) throw new ProtocolError('STRATA_ERR_SECAGG_BAD_SHARE', `a share from ${from}, which is not a neighbour`, { from });
      const boxKey = agreeKey(this.#encryption.privateKey, n.encryptionKey, roundSalt(this.roundId), pairInfo('box', this.agentId, from));
      const plain = open(boxKey, Buffer.from(box, 'base64url'), `${this.roundId}|${from}|${this.agentId}`);
      if (plain === undefined || plain.length !== 2 * SHARE_BYTES) {
        // Still masked against (the pair's mask needs no share); only this share is lost to the reconstruction.
        this.#held.set(from, { self: Buffer.alloc(0), key: Buffer.alloc(0) });
        continue;
      }
      this.#held.set(from, { self: plain.subarray(0, SHARE_BYTES), key: plain.subarray(SHARE_BYTES) });
    }
    this.#relayed = true;
  }

  /**
   * The masked upload of `weighted` (the update already multiplied by its
   * aggregation weight) and the integer `weight`: quantized, plus the self
   * mask and each pairwise mask.
   */
  mask(weighted: Float32Array, weight: number): MaskedUpdate {
    const setup = this.#setup;
    if (setup === undefined || !this.#relayed) throw new StrataError('STRATA_ERR_STATE', 'secure aggregation: masking before the shares were relayed', { state: 'setup' });
    if (this.#masked) throw new StrataError('STRATA_ERR_STATE', 'secure aggregation: masked twice in one round', { state: 'masked' });
    this.#masked = true;
    const payload = new Uint32Array(weighted.length + 1);
    const clipped = encodeVector(weighted, setup.range, setup.scale, payload.subarray(0, weighted.length));
    payload[weighted.length] = encodeInteger(weight);
    applyMask(payload, this.#selfSeed, 1);
    for (const n of setup.neighbours) {
      if (!this.#held.has(n.agentId)) continue;
      applyMask(payload, pairwiseSeed(this.#mask.privateKey, n.maskKey, this.roundId, this.agentId, n.agentId), pairSign(this.agentId, n.agentId));
    }
    return { payload, clipped };
  }

  /** The shares the coordinator asks for. */
  unmask(m: SecAggUnmaskMessage): SecAggUnmaskSharesMessage {
    this.#check(m.roundId);
    if (this.#unmasked) throw new ProtocolError('STRATA_ERR_UNEXPECTED_MESSAGE', 'a second secagg-unmask for the round', { roundId: m.roundId });
    const survivors = new Set(m.survivors);
    for (const d of m.dropped) {
      if (survivors.has(d)) throw new ProtocolError('STRATA_ERR_SECAGG_BAD_SHARE', `asked for both shares of ${d}`, { of: d });
    }
    this.#unmasked = true;
    const shares: SecAggUnmaskSharesMessage['shares'] = [];
    for (const id of m.survivors) {
      const h = this.#held.get(id);
      if (h !== undefined && h.self.length > 0) shares.push({ of: id, kind: 'self', share: h.self.toString('base64url') });
    }
    for (const id of m.dropped) {
      const h = this.#held.get(id);
      if (h !== undefined && h.key.length > 0) shares.push({ of: id, kind: 'key', share: h.key.toString('base64url') });
    }
    return { type: 'secagg-unmask-shares', roundId: this.roundId, shares };
  }

  #check(roundId: number): void {
    if (roundId !== this.roundId) throw new ProtocolError('STRATA_ERR_STALE_ROUND', `secure aggregation message for round ${roundId}, this device is in round ${this.roundId}`, { roundId });
  }
}

/** The seed of a pair's mask, from either end's mask private key and the other's public key. */
export function pairwiseSeed(privateKey: KeyObject, theirMaskKey: string, roundId: number, self: string, other: string): Buffer {
  return agreeKey(privateKey, theirMaskKey, roundSalt(roundId), pairInfo('mask', self, other));
}

/** The share value bytes of a base64url share (for the coordinator's checks). */
export function shareBytes(share: string): Buffer {
  return Buffer.from(share, 'base64url');
}

export { shareFromBytes };
