/**
 * Where the coordinator keeps the payloads of accepted updates while their
 * round is open: one append-only file per round beside the database
 * (`<db>-spool/round-<id>.frames`), each update a whole weight frame (its
 * own CRC covers it when it is read back). The database row of an update
 * holds its offset and length, committed after the frame is written, so a
 * row never points at bytes that are not there (after `kill -9`: the write
 * reached the page cache before the commit; with synchronous FULL the
 * spool is fsynced before the commit, as SQLite's WAL is). A round's file is
 * done with once the round is applied: it is kept (`recycled.frames`) for
 * the next round to write over, since writing over pages already in the
 * page cache takes about half the kernel time of writing a new file
 * (measured: 52 vs 96 ms per 400 MB round), and a second one is removed.
 * So the spool keeps one round's bytes on disk between rounds (the applied
 * round's updates, until the next round writes over them); the kept file
 * is removed when the store closes and at start-up. Bytes past what a
 * round has written are an older round's: rows never point there, and a
 * frame read back is checked against its row's round and version.
 *
 * Why not a BLOB column: measured on the coordinator bench, SQLite moved
 * 100k-parameter update BLOBs at 300-700 MB/s (WAL append, then the
 * checkpoint's second copy into the database file), a file append at
 * 2.5-4 GB/s; the bytes are read again only to resume a round after a crash.
 */
import { closeSync, constants, existsSync, fdatasyncSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, unlink, writeSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../common/strata-error.js';

export interface SpoolRef {
  offset: number;
  length: number;
}

export interface UpdateSpool {
  /** Appends `frame` to round `roundId`'s spool; returns where it is. */
  append(roundId: number, frame: Uint8Array): SpoolRef;
  /** Makes round `roundId`'s appended bytes durable against power loss (synchronous FULL). */
  sync(roundId: number): void;
  /** The bytes at `ref`, or undefined when they are not there (whole). */
  read(roundId: number, ref: SpoolRef): Buffer | undefined;
  /** Round `roundId` is applied (or gone): its spool goes. */
  drop(roundId: number): void;
  /** Removes the spools of every round but `keep` (start-up: leftovers of applied rounds). */
  retainOnly(keep: ReadonlySet<number>): void;
  close(): void;
}

/** A finished round's file, kept to be written over by the next round. */
const RECYCLED = 'recycled.frames';

/** The spool of a file database: `<file>-spool/`. */
export class FileSpool implements UpdateSpool {
  readonly dir: string;
  readonly #open = new Map<number, { fd: number; size: number }>();
  #drops = 0;

  constructor(databaseFile: string) {
    this.dir = `${databaseFile}-spool`;
  }

  #file(roundId: number): string {
    return path.join(this.dir, `round-${roundId}.frames`);
  }

  #handle(roundId: number): { fd: number; size: number } {
    let h = this.#open.get(roundId);
    if (h === undefined) {
      const file = this.#file(roundId);
      try {
        mkdirSync(this.dir, { recursive: true });
        // A new round takes the recycled file and writes from its start; a round reopened after a restart appends.
        const recycled = !existsSync(file) && this.#take(file);
        // Not O_APPEND: writes go where `size` says (Linux ignores positions under O_APPEND).
        const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT);
        h = { fd, size: recycled ? 0 : fstatSync(fd).size };
      } catch (cause) {
        throw new StrataError('STRATA_ERR_STORE_IO', `${file}: cannot open the update spool (${(cause as Error).message})`, { file }, { cause });
      }
      this.#open.set(roundId, h);
    }
    return h;
  }

  /** Renames the recycled file to `file`; false when there is none. */
  #take(file: string): boolean {
    try {
      renameSync(path.join(this.dir, RECYCLED), file);
      return true;
    } catch {
      return false;
    }
  }

  append(roundId: number, frame: Uint8Array): SpoolRef {
    const h = this.#handle(roundId);
    const offset = h.size;
    try {
      let done = 0;
      while (done < frame.byteLength) done += writeSync(h.fd, frame, done, frame.byteLength - done, offset + done);
    } catch (cause) {
      const full = (cause as NodeJS.ErrnoException).code === 'ENOSPC';
      // Whatever part was written is past the end any row points to; the next append starts after it.
      h.size = fstatSync(h.fd).size;
      throw new StrataError(full ? 'STRATA_ERR_STORE_FULL' : 'STRATA_ERR_STORE_IO', `${this.#file(roundId)}: writing an update failed (${(cause as Error).message})`, {
        file: this.#file(roundId),
      }, { cause });
    }
    h.size += frame.byteLength;
    return { offset, length: frame.byteLength };
  }

  sync(roundId: number): void {
    const h = this.#open.get(roundId);
    if (h !== undefined) fdatasyncSync(h.fd);
  }

  read(roundId: number, ref: SpoolRef): Buffer | undefined {
    let fd: number;
    try {
      fd = openSync(this.#file(roundId), 'r');
    } catch {
      return undefined;
    }
    try {
      const out = Buffer.allocUnsafeSlow(ref.length);
      let done = 0;
      while (done < ref.length) {
        const n = readSync(fd, out, done, ref.length - done, ref.offset + done);
        if (n === 0) return undefined;
        done += n;
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }

  drop(roundId: number): void {
    const h = this.#open.get(roundId);
    if (h !== undefined) closeSync(h.fd);
    this.#open.delete(roundId);
    // Kept for the next round to write over when no file is kept yet. Otherwise renamed now (so the
    // round's name is free at once) and removed off the event loop: unlinking a file of a round's
    // updates frees hundreds of MB of page cache, tens of ms of kernel time. A removal a crash
    // interrupts is finished by retainOnly at the next start.
    const file = this.#file(roundId);
    if (!existsSync(file)) return; // Never written, or already gone.
    const recycled = path.join(this.dir, RECYCLED);
    const dropped = existsSync(recycled) ? path.join(this.dir, `dropped-${process.pid}-${++this.#drops}.frames`) : recycled;
    try {
      renameSync(file, dropped);
    } catch {
      return;
    }
    if (dropped !== recycled) unlink(dropped, () => undefined);
  }

  retainOnly(keep: ReadonlySet<number>): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^round-(\d+)\.frames$/.exec(name);
      const leftover = m !== null ? !keep.has(Number(m[1])) : name.startsWith('dropped-') || name === RECYCLED;
      if (leftover) rmSync(path.join(this.dir, name), { force: true });
    }
    if (keep.size === 0 && this.#open.size === 0) rmSync(this.dir, { recursive: true, force: true });
  }

  close(): void {
    for (const h of this.#open.values()) closeSync(h.fd);
    this.#open.clear();
    // Applied rounds' update bytes do not outlive the store.
    rmSync(path.join(this.dir, RECYCLED), { force: true });
  }
}

/** The spool of an in-memory database: in memory too (nothing survives the process either way). */
export class MemorySpool implements UpdateSpool {
  readonly #rounds = new Map<number, Buffer[]>();

  append(roundId: number, frame: Uint8Array): SpoolRef {
    const list = this.#rounds.get(roundId) ?? [];
    list.push(Buffer.from(frame));
    this.#rounds.set(roundId, list);
    return { offset: list.length - 1, length: frame.byteLength };
  }

  sync(): void {}

  read(roundId: number, ref: SpoolRef): Buffer | undefined {
    const b = this.#rounds.get(roundId)?.[ref.offset];
    return b?.byteLength === ref.length ? b : undefined;
  }

  drop(roundId: number): void {
    this.#rounds.delete(roundId);
  }

  retainOnly(keep: ReadonlySet<number>): void {
    for (const id of [...this.#rounds.keys()]) if (!keep.has(id)) this.#rounds.delete(id);
  }

  close(): void {
    this.#rounds.clear();
  }
}
