import v8 from 'node:v8';

/** What `pinYoungGeneration()` did, for the start-up log. */
export interface YoungGenerationPin {
  pinned: boolean;
  /** V8's new space (both semi-spaces) when the call returned. */
  newSpaceBytes: number;
  /** Why nothing was changed, when `pinned` is false. */
  reason?: string;
}

const USER_FLAGS = /--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor|max-heap-size)\b/;

/** Bytes of V8's new space (the young generation's two semi-spaces) now. */
export function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Stops V8's young generation from growing past its size now, for the rest of
 * this process: the coordinator daemon's answer to a 1,000-connection burst.
 *
 * V8 doubles the new space (up to 2 x 16 MiB) whenever as many bytes have
 * survived scavenges as it holds. A burst of connections is exactly that:
 * every connection's sockets and session survive, so the new space grows to
 * its maximum, stays committed for good, and the daemon's resident memory
 * then grows with the number of agents (~20 MiB more at 1,000 than at 100)
 * although the young objects of a round are small and short-lived.
 *
 * `--max-semi-space-size` is read once, when the heap is set up, so it would
 * need a node flag at launch (a wrapper process or NODE_OPTIONS). The growth
 * factor is read at every growth step instead, and a factor of 1 makes a
 * step keep the current size (V8 only clamps values below 2 when the heap is
 * set up, not later). A user who sets any semi-space or heap-size flag keeps
 * V8's own behaviour.
 */
export function pinYoungGeneration(): YoungGenerationPin {
  const given = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].find((a) => USER_FLAGS.test(a));
  if (given !== undefined) return { pinned: false, newSpaceBytes: newSpaceBytes(), reason: `node was started with ${USER_FLAGS.exec(given)![0]}` };
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return { pinned: true, newSpaceBytes: newSpaceBytes() };
}
