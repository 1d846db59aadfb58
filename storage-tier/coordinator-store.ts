/**
 * SQLite persistence of the coordinator: global model versions, rounds, the
 * client registry and the update log, in WAL mode.
 *
 * Crash consistency: an accepted update's payload is appended to its round's
 * spool file (update-spool.ts) and then its row, pointing at it, is committed
 * before the agent is acked. Rows are committed in groups (group commit):
 * `acceptUpdate` queues the row, `commitAccepted` commits every queued row
 * in one transaction and then calls each one's `onDurable` (where the
 * engine acks), and any other call on the store commits the queue first, so
 * the database never sees writes out of order. An update queued when the
 * process dies was never acked, as if it had not arrived. Completing a round (new model version + round
 * status + every contributing row marked `applied`) is one more transaction,
 * after which the round's spool is removed. So after `kill -9` each accepted
 * update is either applied in exactly one model version, or still has its
 * payload and is replayed into the resumed round's accumulator — never lost,
 * never applied twice.
 */
import { StrataError } from '../common/strata-error.js';
import { coordinatorStoreMigrations } from './coordinator-migrations.js';
import type { SqliteDatabase } from './sqlite.js';
import { COORDINATOR_STORE_KIND, classify, openStoreFile, type Synchronous } from './store-file.js';
import type { AcceptedUpdateRecord, ClientRow, CompleteRoundInput, PendingUpdate, RoundHistoryRow, RoundRow, StoredModel, UpdateLogRow } from './coordinator-rows.js';
import { FileSpool, MemorySpool, type SpoolRef, type UpdateSpool } from './update-spool.js';

export interface CoordinatorStoreOptions {
  /** Default `NORMAL`: a commit survives SIGKILL (not power loss); `FULL` fsyncs each commit. */
  synchronous?: Synchronous;
  /** Default 5000. */
  busyTimeoutMs?: number;
}

/** An accepted update waiting for its group commit. */
interface AcceptedRow {
  update: AcceptedUpdateRecord;
  ref: SpoolRef;
  client: ClientRow | undefined;
  onDurable: (() => void) | undefined;
}

const SAVE_CLIENT = `INSERT INTO clients (agent_id, profile, first_seen, last_seen, rounds_done, accepted, rejected, dropped, reliability, mean_seconds)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET profile = excluded.profile, last_seen = excluded.last_seen,
  rounds_done = excluded.rounds_done, accepted = excluded.accepted, rejected = excluded.rejected, dropped = excluded.dropped,
  reliability = excluded.reliability, mean_seconds = excluded.mean_seconds`;

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
  readonly #acceptTx: (batch: readonly AcceptedRow[]) => void;
  /** Accepted updates whose rows are not committed yet (group commit). */
  #accepted: AcceptedRow[] = [];
  readonly #completeTx: (input: CompleteRoundInput) => number;
  readonly #saveClientsTx: (clients: readonly ClientRow[]) => void;
  readonly #spool: UpdateSpool;
  readonly #syncSpool: boolean;

  private constructor(db: SqliteDatabase, owns: boolean, synchronous: Synchronous) {
    this.#db = db;
    this.#owns = owns;
    this.file = db.name;
    this.#spool = db.memory ? new MemorySpool() : new FileSpool(db.name);
    this.#syncSpool = synchronous === 'FULL';
    const insertUpdate = db.prepare(`INSERT INTO updates (round_id, assigned_round, agent_id, model_version, num_samples, weight, scale, norm, bytes,
      status, received_at, spool_offset, spool_length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?)`);
    const bumpAccepted = db.prepare('UPDATE rounds SET accepted = accepted + 1 WHERE round_id = ?');
    const saveClient = db.prepare(SAVE_CLIENT);
    const save = (c: ClientRow): void => {
      saveClient.run(c.agentId, c.profile, c.firstSeen, c.lastSeen, c.roundsDone, c.accepted, c.rejected, c.dropped, c.reliability, c.meanSeconds);
    };
    this.#acceptTx = db.transaction((batch: readonly AcceptedRow[]) => {
      for (const { update: u, ref, client } of batch) {
        insertUpdate.run(u.roundId, u.assignedRound, u.agentId, u.modelVersion, u.numSamples, u.weight, u.scale, u.norm, u.bytes, u.receivedAt, ref.offset, ref.length);
        bumpAccepted.run(u.roundId);
        if (client !== undefined) save(client);
      }
    });
    this.#saveClientsTx = db.transaction((clients: readonly ClientRow[]) => {
      for (const c of clients) save(c);
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
    // Spools of rounds applied before a crash (their rows no longer need them).
    const open = db.prepare(`SELECT round_id FROM rounds WHERE status = 'open'`).pluck().all().map(Number);
    this.#spool.retainOnly(new Set(open));
  }

  /**
   * Opens (creating and migrating if needed) a coordinator database file, or
   * wraps an open connection. A file that is not a database, is corrupt, was
   * written by a newer Strata or is another kind of Strata store is refused
   * with a coded StrataError naming it (store-file.ts).
   */
  static open(target: string | SqliteDatabase, options: CoordinatorStoreOptions = {}): CoordinatorStore {
    const opened = openStoreFile(target, coordinatorStoreMigrations, {
      kind: COORDINATOR_STORE_KIND,
      // Small pages: rows are small now that payloads wait in the spool, and every commit writes whole pages
      // (a database made with 64 KiB pages for BLOBs keeps them).
      pageSize: 4096,
      readonly: false,
      synchronous: options.synchronous ?? 'NORMAL',
      integrityCheck: 'quick',
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      cacheSizeKiB: 8192,
      mmapSizeBytes: 0,
    });
    try {
      return new CoordinatorStore(opened.db, opened.ownsConnection, options.synchronous ?? 'NORMAL');
    } catch (err) {
      if (opened.ownsConnection) opened.db.close();
      throw err instanceof StrataError ? err : classify(err, opened.file);
    }
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

  /**
   * Records an accepted update: its delta weight frame into the round's
   * spool now, and its row (and its client's, when given), pointing at it,
   * into the queue `commitAccepted` commits. Durable once that commit is
   * done, when `onDurable` is called (the engine acks there).
   */
  acceptUpdate(update: AcceptedUpdateRecord, frame: Uint8Array, client?: ClientRow, onDurable?: () => void): void {
    const ref = this.#spool.append(update.roundId, frame);
    this.#accepted.push({ update, ref, client, onDurable });
  }

  /** Accepted updates queued and not yet committed. */
  get uncommitted(): number {
    return this.#accepted.length;
  }

  /**
   * Commits the queued rows of accepted updates in one transaction (their
   * spooled frames synced first under synchronous FULL), then calls their
   * `onDurable` in acceptance order. Returns how many. If the commit fails,
   * the queued updates are dropped (none was acked) and the error is thrown.
   */
  commitAccepted(): number {
    const batch = this.#accepted;
    if (batch.length === 0) return 0;
    this.#accepted = [];
    if (this.#syncSpool) for (const roundId of new Set(batch.map((b) => b.update.roundId))) this.#spool.sync(roundId);
    this.#acceptTx(batch);
    for (const b of batch) b.onDurable?.();
    return batch.length;
  }

  /** Removes a pending update whose spooled frame is lost or unreadable (its round goes on without it). */
  forgetUpdate(seq: number): void {
    this.commitAccepted();
    this.#db.transaction(() => {
      const row = this.#prepare(`DELETE FROM updates WHERE seq = ? AND status = 'accepted' RETURNING round_id`).pluck().get(seq);
      if (row !== undefined) this.#prepare('UPDATE rounds SET accepted = accepted - 1 WHERE round_id = ?').run(row);
    })();
  }

  /** Accepted, not yet applied updates of a round, in acceptance order (for replay after a restart). */
  *pendingUpdates(roundId: number): IterableIterator<PendingUpdate> {
    this.commitAccepted();
    // Streamed row by row: replay memory stays O(model), not O(updates x model). A statement of
    // its own (not the cache): an iterating statement cannot run anything else until it is done.
    const stmt = this.#db.prepare(`SELECT * FROM updates WHERE round_id = ? AND status = 'accepted' ORDER BY seq`) as unknown as {
      iterate(...params: unknown[]): IterableIterator<unknown>;
    };
    const rows = stmt.iterate(roundId);
    const spooled: Array<{ record: PendingUpdate; ref: SpoolRef }> = [];
    for (const row of rows as Iterable<Record<string, unknown>>) {
      const { payload, spoolOffset, spoolLength, ...rest } = camel(row);
      const record = rest as unknown as PendingUpdate;
      if (payload !== null && payload !== undefined) yield { ...record, delta: floatsOf(payload as Uint8Array), lost: false };
      else if (spoolOffset === null || spoolOffset === undefined) yield { ...record, lost: true };
      else spooled.push({ record, ref: { offset: Number(spoolOffset), length: Number(spoolLength) } });
    }
    // Read once the statement is done (a caller may write, e.g. forgetUpdate, as it goes).
    for (const { record, ref } of spooled) {
      const frame = this.#spool.read(roundId, ref);
      yield frame === undefined ? { ...record, lost: true } : { ...record, frame, lost: false };
    }
  }

  /** Agents that already have an update logged for an assignment of `assignedRound`. */
  contributors(assignedRound: number): Set<string> {
    return new Set(this.#prepare('SELECT agent_id FROM updates WHERE assigned_round = ?').pluck().all(assignedRound).map(String));
  }

  /** New model version + round completed + its updates marked applied, in one transaction. Returns the applied count. */
  completeRound(input: CompleteRoundInput): number {
    this.commitAccepted();
    const applied = this.#completeTx(input);
    this.#spool.drop(input.roundId);
    return applied;
  }

  /** Every completed round with its model's evaluation, in round order. */
  history(): RoundHistoryRow[] {
    const rows = this.#prepare(`SELECT r.round_id, r.new_version, r.started_at, r.closed_at, r.accepted, r.rejected, r.dropped, m.applied, m.accuracy, m.loss
      FROM rounds r JOIN models m ON m.version = r.new_version WHERE r.status = 'completed' ORDER BY r.round_id`).raw().all() as Array<
      [number, number, number, number, number, number, number, number, number | null, number | null]>;
    return rows.map(([roundId, modelVersion, openedAt, closedAt, accepted, rejected, dropped, applied, accuracy, loss]) => ({
      roundId, modelVersion, openedAt, closedAt, seconds: (closedAt - openedAt) / 1000, applied, accepted, rejected, dropped, accuracy, loss,
    }));
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
    this.#prepare(SAVE_CLIENT).run(c.agentId, c.profile, c.firstSeen, c.lastSeen, c.roundsDone, c.accepted, c.rejected, c.dropped, c.reliability, c.meanSeconds);
  }

  /** Several clients' rows in one transaction. */
  saveClients(clients: readonly ClientRow[]): void {
    this.commitAccepted();
    if (clients.length > 0) this.#saveClientsTx(clients);
  }

  loadClients(): ClientRow[] {
    return this.#prepare('SELECT * FROM clients').all().map((r) => camel(r as Record<string, unknown>) as unknown as ClientRow);
  }

  close(): void {
    this.commitAccepted();
    this.#spool.close();
    if (this.#owns && this.#db.open) this.#db.close();
  }

  /**
   * A cached statement. Every method runs its statements through here (or,
   * for a transaction or a statement of its own, calls `commitAccepted`
   * first), so whatever it does comes after the queued accepted updates.
   */
  #prepare(sql: string): ReturnType<SqliteDatabase['prepare']> {
    this.commitAccepted();
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }
}
