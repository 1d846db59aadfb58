/**
 * Where long-lived components read time and set timers. The daemon runs on
 * the system clock; a simulation runs the same components on a virtual
 * clock whose time jumps from event to event (simulation/virtual-clock.ts).
 */
export interface Clock {
  /** Milliseconds: the epoch for the system clock, a run's virtual epoch in a simulation. */
  now(): number;
  /** Calls `fn` once, `delayMs` from now (on this clock). */
  setTimer(delayMs: number, fn: () => void): ClockTimer;
}

export interface ClockTimer {
  cancel(): void;
}

/** Wall time and Node's timers. Timers do not keep the process alive. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimer(delayMs: number, fn: () => void): ClockTimer {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
});
