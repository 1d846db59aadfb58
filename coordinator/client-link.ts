import type { Logger } from 'pino';
import type { ProtocolError, ProtocolErrorCode, RoundAssignmentMessage, SecAggCoordinatorMessage } from '../protocol/index.js';

/**
 * One client as the round engine sees it, whatever carries its messages:
 * an agent's WebSocket session in the daemon (coordinator/server/), or a
 * virtual client on a worker pool in a simulation (simulation/). The engine
 * never touches a socket or a worker; the transport calls the engine back
 * (`RoundEngine.connect / disconnect / result / update / failed`).
 */
export interface ClientLink {
  readonly clientId: string;
  /** Device profile name the client announced. */
  readonly profile: string;
  readonly log: Logger;
  /** Optional protocol features the client offers (`secure-aggregation`, ...). */
  readonly features: readonly string[];
  /** A round to train: the assignment and the encoded global model frame (one Buffer shared by every assignee). */
  assign(assignment: RoundAssignmentMessage, model: Buffer): void;
  /** The engine wants the update frame behind the result it just took (a transport may queue this to bound uploads in flight). */
  requestUpdate(roundId: number): void;
  /** The engine no longer wants that frame (its round closed first); a frame that still comes is dropped by the engine without blame. */
  withdrawUpdate(roundId: number): void;
  ack(roundId: number, accepted: boolean, code?: ProtocolErrorCode): void;
  /** Refuses the client's input with a coded error: it counts against the client's error budget, and codes that close a connection close it. */
  refuse(err: ProtocolError, roundId?: number): void;
  /** A secure-aggregation message of the round the client takes part in. */
  secagg(message: SecAggCoordinatorMessage): void;
  /** Ends the link (another connection took its client id). */
  close(err: ProtocolError): void;
}
