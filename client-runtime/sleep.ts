/**
 * Sleeping without and with the event loop. `sleepSync` really blocks the
 * calling thread (Atomics.wait on a private SharedArrayBuffer): the swap
 * worker uses it to stand for a slow storage read, and sync-mode swapping
 * uses it on the main thread, where Node allows Atomics.wait too.
 */
const parking = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` milliseconds (fractions allowed); returns at once for ms <= 0. */
export function sleepSync(ms: number): void {
  if (!(ms > 0)) return;
  // Nobody ever notifies `parking`, so this returns 'timed-out' after ms.
  Atomics.wait(parking, 0, 0, ms);
}

/** Resolves after `ms` milliseconds (a timer: the event loop keeps running). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
