import type { Clock, ClockTimer } from '../common/clock.js';

interface Scheduled {
  at: number;
  /** Ties in time go by this, then by scheduling order. */
  order: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A simulation's clock: time stands still until the simulation advances it
 * to the next scheduled event (a client's update arriving, a dropout, the
 * engine's round deadline) and runs that event. Events at the same time run
 * by their order key (a client's index; timers first), then in the order
 * they were scheduled. `now()` is milliseconds from `origin`
 * (a wall-clock epoch, so stored timestamps read as dates) plus the virtual
 * time elapsed.
 */
export class VirtualClock implements Clock {
  readonly origin: number;
  #now: number;
  #seq = 0;
  readonly #heap: Scheduled[] = [];

  constructor(origin = Date.now()) {
    this.origin = origin;
    this.#now = origin;
  }

  now(): number {
    return this.#now;
  }

  /** Virtual seconds since the origin. */
  get elapsedSeconds(): number {
    return (this.#now - this.origin) / 1000;
  }

  setTimer(delayMs: number, fn: () => void): ClockTimer {
    return this.at(this.#now + Math.max(0, delayMs), fn, -1);
  }

  /** Schedules `fn` at absolute time `at` (not before now); `order` breaks ties in time. */
  at(at: number, fn: () => void, order = 0): ClockTimer {
    const e: Scheduled = { at: Math.max(at, this.#now), order, seq: this.#seq++, fn, cancelled: false };
    this.#push(e);
    return { cancel: () => { e.cancelled = true; } };
  }

  /** Time of the next event still scheduled, or undefined. */
  peek(): number | undefined {
    this.#dropCancelled();
    return this.#heap[0]?.at;
  }

  /** Events still scheduled whose order key is at least `minOrder` (client events: >= 0; timers: -1). */
  scheduled(minOrder: number): number {
    let n = 0;
    for (const e of this.#heap) if (!e.cancelled && e.order >= minOrder) n++;
    return n;
  }

  /** Advances to the next event and runs it; false when none is scheduled. */
  runNext(): boolean {
    this.#dropCancelled();
    const e = this.#pop();
    if (e === undefined) return false;
    this.#now = Math.max(this.#now, e.at);
    e.fn();
    return true;
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
  }

  #before(a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && (a.order < b.order || (a.order === b.order && a.seq < b.seq)));
  }

  #push(e: Scheduled): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Scheduled | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
