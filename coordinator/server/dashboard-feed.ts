import type http from 'node:http';

/** What the live dashboard shows: the coordinator's status now and its completed rounds. */
export interface DashboardSource {
  status(): unknown;
  /** Every completed round (read from the store when a page connects: nothing kept in memory for it). */
  history(): unknown[];
}

export interface DashboardFeedOptions {
  /** Status pushes at most this often while something changes. Default 500 ms. */
  minIntervalMs?: number;
  /** And at least this often (deadline countdowns, last seen). Default 5 s. */
  maxIntervalMs?: number;
}

/**
 * The dashboard's live updates as server-sent events (`GET /events`): on
 * connect a `history` event (completed rounds) and a `status` event; then a
 * `round` event per completed round and `status` events, throttled, when
 * something changed. Costs nothing while no page is open: the timer runs
 * only with subscribers, and the status is serialised once per push for all.
 */
export class DashboardFeed {
  readonly #source: DashboardSource;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #clients = new Set<http.ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #dirty = false;
  #lastPush = 0;
  #closed = false;

  constructor(source: DashboardSource, options: DashboardFeedOptions = {}) {
    this.#source = source;
    this.#minMs = options.minIntervalMs ?? 500;
    this.#maxMs = options.maxIntervalMs ?? 5000;
  }

  get subscribers(): number {
    return this.#clients.size;
  }

  /** Takes over an HTTP response as an event stream. */
  subscribe(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#closed) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('shutting down\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n${frame('history', JSON.stringify(this.#source.history()))}${frame('status', JSON.stringify(this.#source.status()))}`);
    this.#clients.add(res);
    const drop = (): void => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#stopTimer();
    };
    req.once('close', drop);
    res.once('close', drop);
    this.#startTimer();
  }

  /** Something the page shows changed: pushed at the next tick. */
  changed(): void {
    if (this.#clients.size > 0) this.#dirty = true;
  }

  /** A completed round, with its evaluation: pushed at once (its own event), then the status. */
  round(summary: unknown): void {
    if (this.#clients.size === 0) return;
    this.#broadcast(frame('round', JSON.stringify(summary)));
    this.#dirty = true;
  }

  /** Ends every stream (the page reconnects, and finds the coordinator gone or back). */
  close(): void {
    this.#closed = true;
    this.#stopTimer();
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #startTimer(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), this.#minMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = Date.now();
    if (!this.#dirty && now - this.#lastPush < this.#maxMs) return;
    this.#dirty = false;
    this.#lastPush = now;
    this.#broadcast(frame('status', JSON.stringify(this.#source.status())));
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) {
      // A page that cannot keep up loses its stream (it reconnects) rather than growing our buffers.
      if (res.writableLength > 4 * 2 ** 20) res.destroy();
      else res.write(text);
    }
  }
}

function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}
