/**
 * The rows the coordinator's store (coordinator-store.ts) reads and writes:
 * model versions, rounds, the update log, the client registry.
 */

export interface StoredModel {
  version: number;
  roundId: number;
  layoutHash: string;
  weights: Float32Array;
  strategyState: Uint8Array | null;
  applied: number;
  accuracy: number | null;
  loss: number | null;
  createdAt: number;
}

export interface RoundRow {
  roundId: number;
  baseVersion: number;
  status: 'open' | 'completed';
  startedAt: number;
  closedAt: number | null;
  newVersion: number | null;
  selected: number;
  accepted: number;
  rejected: number;
  dropped: number;
  resumed: number;
}

export interface AcceptedUpdateRecord {
  roundId: number;
  assignedRound: number;
  agentId: string;
  modelVersion: number;
  numSamples: number;
  weight: number;
  scale: number;
  norm: number;
  bytes: number;
  receivedAt: number;
}

export interface PendingUpdate extends AcceptedUpdateRecord {
  seq: number;
  /** The spooled delta weight frame, as accepted (its CRC still to check). */
  frame?: Buffer;
  /** A row from before the spool: the delta, float32 (a fresh, aligned copy). */
  delta?: Float32Array;
  /** Neither is there (the spool lost it: a power cut under synchronous NORMAL). */
  lost: boolean;
}

export interface UpdateLogRow extends AcceptedUpdateRecord {
  seq: number;
  status: 'accepted' | 'applied';
  appliedVersion: number | null;
}

export interface ClientRow {
  agentId: string;
  profile: string;
  firstSeen: number;
  lastSeen: number;
  roundsDone: number;
  accepted: number;
  rejected: number;
  dropped: number;
  reliability: number;
  meanSeconds: number | null;
}

/** One completed round and the model it produced (the dashboard's curves). */
export interface RoundHistoryRow {
  roundId: number;
  modelVersion: number;
  openedAt: number;
  closedAt: number;
  seconds: number;
  applied: number;
  accepted: number;
  rejected: number;
  dropped: number;
  accuracy: number | null;
  loss: number | null;
}

export interface CompleteRoundInput {
  roundId: number;
  newVersion: number;
  layoutHash: string;
  weights: Float32Array;
  strategyState: Uint8Array | null;
  closedAt: number;
}
