/**
 * Where the coordinator keeps the payloads of accepted updates while their
 * round is open: one append-only file per round beside the database
 * (`<db>-spool/round-<id>.frames`), each update a whole weight frame (its
 * own CRC covers it when it is read back). The database row of an update
 * holds its offset and length, committed after the frame is written, so a
 * row never points at bytes that are not there (after `kill -9`: the write
 * reached the page cache before the commit; with synchronous FULL the
 * spool is fsynced before the commit, as SQLite's WAL is). A round's file is
 * removed once the round is applied.
 *
 * Why not a BLOB column: measured on the coordinator bench, SQLite moved
 * 100k-parameter update BLOBs at 300-700 MB/s (WAL append, then the
 * checkpoint's second copy into the database file), a file append at
 * 2.5-4 GB/s; the bytes are read again only to resume a round after a crash.
 */
import { closeSync, fdatasyncSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, unlink, writeSync } from 'node:fs';
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
      try {
        mkdirSync(this.dir, { recursive: true });
        const fd = openSync(this.#file(roundId), 'a');
        h = { fd, size: fstatSync(fd).size };
      } catch (cause) {
        throw new StrataError('STRATA_ERR_STORE_IO', `${this.#file(roundId)}: cannot open the update spool (${(cause as Error).message})`, { file: this.#file(roundId) }, { cause });
      }
      this.#open.set(roundId, h);
    }
    return h;
  }

  append(roundId: number, frame: Uint8Array): SpoolRef {
    const h = this.#handle(roundId);
    const offset = h.size;
    try {
      let done = 0;
      while (done < frame.byteLength) done += writeSync(h.fd, frame, done, frame.byteLength - done);
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
    // Renamed now (so the round's name is free at once), removed off the event loop: unlinking a
    // file of a round's updates frees hundreds of MB of page cache, tens of ms of kernel time.
    // A removal a crash interrupts is finished by retainOnly at the next start.
    const dropped = path.join(this.dir, `dropped-${process.pid}-${++this.#drops}.frames`);
    try {
      renameSync(this.#file(roundId), dropped);
    } catch {
      return; // Never written, or already gone.
    }
    unlink(dropped, () => undefined);
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
      if (m !== null && !keep.has(Number(m[1]))) this.drop(Number(m[1]));
      if (name.startsWith('dropped-')) rmSync(path.join(this.dir, name), { force: true });
    }
    if (keep.size === 0 && this.#open.size === 0) rmSync(this.dir, { recursive: true, force: true });
  }

  close(): void {
    for (const h of this.#open.values()) closeSync(h.fd);
    this.#open.clear();
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
