/**
 * The secure-aggregation (SecAgg+) messages of the wire protocol, members
 * of `MessageSchema` in messages.ts, exchanged by agents and a coordinator
 * that both use the `secure-aggregation` feature.
 */
import { z } from 'zod';
import { agentId, positiveInt, uint32 } from './wire-fields.js';

const publicKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const box = z.string().regex(/^[A-Za-z0-9_-]{1,4096}$/);
const digest = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
/** A Shamir share value (base64url of 66 bytes). */
const shareValue = z.string().regex(/^[A-Za-z0-9_-]{88}$/);

/** Agent -> coordinator, at assignment (secure aggregation): its two X25519 public keys for the round. */
export const SecAggKeysSchema = z.object({
  type: z.literal('secagg-keys'),
  roundId: uint32,
  /** Encrypts the shares its neighbours deal it. */
  encryptionKey: publicKey,
  /** Agrees its pairwise mask seeds. */
  maskKey: publicKey,
});

/** Coordinator -> agent: the round's graph as this agent needs it, and how to quantize. */
export const SecAggSetupSchema = z.object({
  type: z.literal('secagg-setup'),
  roundId: uint32,
  /** This agent's Shamir x. */
  x: positiveInt,
  neighbours: z.array(z.object({ agentId, x: positiveInt, encryptionKey: publicKey, maskKey: publicKey })).max(1024),
  /** Shares that reconstruct a seed. */
  threshold: positiveInt,
  /** Weighted update coordinates are clipped to +-range and encoded as round(v x scale) mod p. */
  range: z.number().positive(),
  scale: positiveInt,
});

/** Agent -> coordinator: its seeds' shares, each sealed for one neighbour, and a commitment to each share. */
export const SecAggSharesSchema = z.object({
  type: z.literal('secagg-shares'),
  roundId: uint32,
  boxes: z.array(z.object({ to: agentId, box })).max(1024),
  commitments: z.array(z.object({ holder: agentId, self: digest, key: digest })).max(1024),
});

/** Coordinator -> agent: the sealed shares its neighbours dealt it; it masks against exactly these neighbours. */
export const SecAggRelaySchema = z.object({
  type: z.literal('secagg-relay'),
  roundId: uint32,
  boxes: z.array(z.object({ from: agentId, box })).max(1024),
});

/** Coordinator -> agent, after the masked uploads: which neighbours' seeds to reveal shares of. */
export const SecAggUnmaskSchema = z.object({
  type: z.literal('secagg-unmask'),
  roundId: uint32,
  /** Neighbours whose masked update is in the sum: shares of their self-mask seed. */
  survivors: z.array(agentId).max(1024),
  /** Neighbours that dealt shares but sent no masked update: shares of their mask key. */
  dropped: z.array(agentId).max(1024),
});

/** Agent -> coordinator: the shares asked for (never both kinds for one neighbour). */
export const SecAggUnmaskSharesSchema = z.object({
  type: z.literal('secagg-unmask-shares'),
  roundId: uint32,
  shares: z.array(z.object({ of: agentId, kind: z.enum(['self', 'key']), share: shareValue })).max(1024),
});

export type SecAggKeysMessage = z.infer<typeof SecAggKeysSchema>;
export type SecAggSetupMessage = z.infer<typeof SecAggSetupSchema>;
export type SecAggSharesMessage = z.infer<typeof SecAggSharesSchema>;
export type SecAggRelayMessage = z.infer<typeof SecAggRelaySchema>;
export type SecAggUnmaskMessage = z.infer<typeof SecAggUnmaskSchema>;
export type SecAggUnmaskSharesMessage = z.infer<typeof SecAggUnmaskSharesSchema>;
/** Secure-aggregation messages an agent sends, and those a coordinator sends. */
export type SecAggAgentMessage = SecAggKeysMessage | SecAggSharesMessage | SecAggUnmaskSharesMessage;
export type SecAggCoordinatorMessage = SecAggSetupMessage | SecAggRelayMessage | SecAggUnmaskMessage;
