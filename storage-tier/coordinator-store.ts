/**
 * SQLite persistence of the coordinator: global model versions, rounds, the
 * client registry and the update log, in WAL mode.
 *
 * Crash consistency: an accepted update's row *and its payload* are written
 * in one transaction before the agent is acked; completing a round (new
 * model version + round status + every contributing row marked `applied`,
 * payloads dropped) is one more transaction. So after `kill -9` each accepted
 * update is either applied in exactly one model version, or still has its
 * payload and is replayed into the resumed round's accumulator — never lost,
 * never applied twice.
 */
import Database from 'better-sqlite3';
import { StrataError } from '../common/strata-error.js';
import { coordinatorStoreMigrations } from './coordinator-migrations.js';
import type { SqliteDatabase } from './sqlite.js';
import { openStoreFile, type Synchronous } from './store-file.js';

export interface CoordinatorStoreOptions {
  /** Default `NORMAL`: a commit survives SIGKILL (not power loss); `FULL` fsyncs each commit. */
  synchronous?: Synchronous;
  /** Default 5000. */
  busyTimeoutMs?: number;
}

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
  /** The delta, float32 (a fresh, aligned copy). */
  delta: Float32Array;
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

export interface CompleteRoundInput {
  roundId: number;
  newVersion: number;
  layoutHash: string;
  weights: Float32Array;
  strategyState: Uint8Array | null;
  closedAt: number;
}

const ROUND_COUNTERS = ['selected', 'rejected', 'dropped'] as const;
export type RoundCounter = (typeof ROUND_COUNTERS)[number];

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function floatsOf(blob: Uint8Array): Float32Array {
  const out = new Float32Array(blob.byteLength / 4);
  new Uint8Array(out.buffer).set(blob);
  return out;
}

function camel(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

export class CoordinatorStore {
  readonly file: string;
  readonly #db: SqliteDatabase;
  /** Prepared statements by SQL text: the registry and round counters run per accepted update. */
  readonly #statements = new Map<string, ReturnType<SqliteDatabase['prepare']>>();
  readonly #owns: boolean;
  readonly #acceptTx: (u: AcceptedUpdateRecord, payload: Uint8Array) => void;
  readonly #completeTx: (input: CompleteRoundInput) => number;

  private constructor(db: SqliteDatabase, owns: boolean) {
    this.#db = db;
    this.#owns = owns;
    this.file = db.name;
    const insertUpdate = db.prepare(`INSERT INTO updates (round_id, assigned_round, agent_id, model_version, num_samples, weight, scale, norm, bytes,
      status, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, ?)`);
    const bumpAccepted = db.prepare('UPDATE rounds SET accepted = accepted + 1 WHERE round_id = ?');
    this.#acceptTx = db.transaction((u: AcceptedUpdateRecord, payload: Uint8Array) => {
      insertUpdate.run(u.roundId, u.assignedRound, u.agentId, u.modelVersion, u.numSamples, u.weight, u.scale, u.norm, u.bytes, u.receivedAt, payload);
      bumpAccepted.run(u.roundId);
    });
    const insertModel = db.prepare(`INSERT INTO models (version, round_id, layout_hash, weights, strategy_state, applied, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const markApplied = db.prepare(`UPDATE updates SET status = 'applied', applied_version = ?, payload = NULL WHERE round_id = ? AND status = 'accepted'`);
    const closeRound = db.prepare(`UPDATE rounds SET status = 'completed', closed_at = ?, new_version = ? WHERE round_id = ? AND status = 'open'`);
    this.#completeTx = db.transaction((input: CompleteRoundInput) => {
      const closed = closeRound.run(input.closedAt, input.newVersion, input.roundId);
      if (closed.changes !== 1) throw new StrataError('STRATA_ERR_STORE_STATE', `round ${input.roundId} is not open`, { roundId: input.roundId });
      const applied = markApplied.run(input.newVersion, input.roundId).changes;
      insertModel.run(input.newVersion, input.roundId, input.layoutHash, bytesOf(input.weights), input.strategyState, applied, input.closedAt);
      return applied;
    });
  }

  /** Opens (creating and migrating if needed) a coordinator database file, or wraps an open connection. */
  static open(target: string | SqliteDatabase, options: CoordinatorStoreOptions = {}): CoordinatorStore {
    const owns = typeof target === 'string';
    let db: SqliteDatabase;
    try {
      db = typeof target === 'string' ? (new Database(target) as unknown as SqliteDatabase) : target;
    } catch (cause) {
      throw new StrataError('STRATA_ERR_STORE_OPEN', `${String(target)}: cannot open the coordinator database`, { file: target }, { cause });
    }
    // Large pages: update payloads are ~100s of KiB blobs; 64 KiB pages halve
    // the cost of writing them. Only takes effect on a new file.
    const pages = Number(db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get());
    if (pages === 0 && !db.memory) db.pragma('page_size = 65536');
    openStoreFile(db, coordinatorStoreMigrations, {
      readonly: false,
      synchronous: options.synchronous ?? 'NORMAL',
      integrityCheck: 'quick',
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      cacheSizeKiB: 8192,
      mmapSizeBytes: 0,
    });
    return new CoordinatorStore(db, owns);
  }

  getMeta(key: string): string | undefined {
    const v = this.#prepare('SELECT value FROM coordinator_meta WHERE key = ?').pluck().get(key);
    return v === undefined ? undefined : String(v);
  }

  setMeta(key: string, value: string): void {
    this.#prepare('INSERT INTO coordinator_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  saveInitialModel(weights: Float32Array, layoutHash: string, at: number): void {
    this.#prepare(`INSERT INTO models (version, round_id, layout_hash, weights, strategy_state, applied, created_at) VALUES (0, 0, ?, ?, NULL, 0, ?)`)
      .run(layoutHash, bytesOf(weights), at);
  }

  latestModel(): StoredModel | undefined {
    return this.#model(this.#prepare('SELECT * FROM models ORDER BY version DESC LIMIT 1').get());
  }

  model(version: number): StoredModel | undefined {
    return this.#model(this.#prepare('SELECT * FROM models WHERE version = ?').get(version));
  }

  #model(row: unknown): StoredModel | undefined {
    if (row === undefined) return undefined;
    const r = row as Record<string, unknown>;
    return {
      version: Number(r['version']),
      roundId: Number(r['round_id']),
      layoutHash: String(r['layout_hash']),
      weights: floatsOf(r['weights'] as Uint8Array),
      strategyState: (r['strategy_state'] as Uint8Array | null) ?? null,
      applied: Number(r['applied']),
      accuracy: r['accuracy'] === null ? null : Number(r['accuracy']),
      loss: r['loss'] === null ? null : Number(r['loss']),
      createdAt: Number(r['created_at']),
    };
  }

  setModelEvaluation(version: number, accuracy: number, loss: number): void {
    this.#prepare('UPDATE models SET accuracy = ?, loss = ? WHERE version = ?').run(accuracy, loss, version);
  }

  openRound(roundId: number, baseVersion: number, startedAt: number): void {
    this.#prepare(`INSERT INTO rounds (round_id, base_version, status, started_at) VALUES (?, ?, 'open', ?)`).run(roundId, baseVersion, startedAt);
  }

  /** The round that was open when the process stopped, if any. */
  openRoundRow(): RoundRow | undefined {
    const row = this.#prepare(`SELECT * FROM rounds WHERE status = 'open'`).get();
    return row === undefined ? undefined : (camel(row as Record<string, unknown>) as unknown as RoundRow);
  }

  rounds(): RoundRow[] {
    return this.#prepare('SELECT * FROM rounds ORDER BY round_id').all().map((r) => camel(r as Record<string, unknown>) as unknown as RoundRow);
  }

  bumpRound(roundId: number, counter: RoundCounter | 'resumed', by = 1): void {
    if (!(ROUND_COUNTERS as readonly string[]).includes(counter) && counter !== 'resumed') throw new Error(`bad counter ${counter}`);
    this.#prepare(`UPDATE rounds SET ${counter} = ${counter} + ? WHERE round_id = ?`).run(by, roundId);
  }

  /** Records an accepted update and its payload atomically (the ack is sent after this returns). */
  acceptUpdate(update: AcceptedUpdateRecord, payload: Uint8Array): void {
    this.#acceptTx(update, payload);
  }

  /** Accepted, not yet applied updates of a round, in acceptance order (for replay after a restart). */
  *pendingUpdates(roundId: number): IterableIterator<PendingUpdate> {
    // Streamed row by row: replay memory stays O(model), not O(updates x model). A statement of
    // its own (not the cache): an iterating statement cannot run anything else until it is done.
    const stmt = this.#db.prepare(`SELECT * FROM updates WHERE round_id = ? AND status = 'accepted' ORDER BY seq`) as unknown as {
      iterate(...params: unknown[]): IterableIterator<unknown>;
    };
    const rows = stmt.iterate(roundId);
    for (const row of rows as Iterable<Record<string, unknown>>) {
      const { payload, ...rest } = camel(row);
      yield { ...(rest as unknown as AcceptedUpdateRecord), delta: floatsOf(payload as Uint8Array) };
    }
  }

  /** Agents that already have an update logged for an assignment of `assignedRound`. */
  contributors(assignedRound: number): Set<string> {
    return new Set(this.#prepare('SELECT agent_id FROM updates WHERE assigned_round = ?').pluck().all(assignedRound).map(String));
  }

  /** New model version + round completed + its updates marked applied, in one transaction. Returns the applied count. */
  completeRound(input: CompleteRoundInput): number {
    return this.#completeTx(input);
  }

  updateLog(): UpdateLogRow[] {
    return this.#prepare('SELECT seq, round_id, assigned_round, agent_id, model_version, num_samples, weight, scale, norm, bytes, status, applied_version, received_at FROM updates ORDER BY seq')
      .all().map((r) => camel(r as Record<string, unknown>) as unknown as UpdateLogRow);
  }

  recordRejection(roundId: number | null, agentId: string | null, code: string, at: number): void {
    this.#prepare('INSERT INTO rejections (round_id, agent_id, code, at) VALUES (?, ?, ?, ?)').run(roundId, agentId, code, at);
  }

  rejections(): Array<{ roundId: number | null; agentId: string | null; code: string; at: number }> {
    return this.#prepare('SELECT round_id, agent_id, code, at FROM rejections ORDER BY seq').all()
      .map((r) => camel(r as Record<string, unknown>) as unknown as { roundId: number | null; agentId: string | null; code: string; at: number });
  }

  saveClient(c: ClientRow): void {
    this.#prepare(`INSERT INTO clients (agent_id, profile, first_seen, last_seen, rounds_done, accepted, rejected, dropped, reliability, mean_seconds)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET profile = excluded.profile, last_seen = excluded.last_seen,
      rounds_done = excluded.rounds_done, accepted = excluded.accepted, rejected = excluded.rejected, dropped = excluded.dropped,
      reliability = excluded.reliability, mean_seconds = excluded.mean_seconds`)
      .run(c.agentId, c.profile, c.firstSeen, c.lastSeen, c.roundsDone, c.accepted, c.rejected, c.dropped, c.reliability, c.meanSeconds);
  }

  loadClients(): ClientRow[] {
    return this.#prepare('SELECT * FROM clients').all().map((r) => camel(r as Record<string, unknown>) as unknown as ClientRow);
  }

  close(): void {
    if (this.#owns && this.#db.open) this.#db.close();
  }

  #prepare(sql: string): ReturnType<SqliteDatabase['prepare']> {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }
}
