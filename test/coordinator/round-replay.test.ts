import { openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GlobalModel } from '../../coordinator/global-model.js';
import { replayRound } from '../../coordinator/round-replay.js';
import { FedAvg } from '../../coordinator/strategies/fedavg.js';
import { encodeWeightFrame } from '../../protocol/index.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';
import type { AcceptedUpdateRecord } from '../../storage-tier/coordinator-rows.js';
import { tempDir } from '../storage-tier/helpers.js';
import { silentLogger } from './helpers.js';

const tmp = tempDir('strata-replay-test-');
afterAll(() => tmp.remove());

const P = 1000;
const LAYOUT = '0123456789abcdef';

function record(roundId: number, agentId: string, modelVersion: number): AcceptedUpdateRecord {
  return { roundId, assignedRound: roundId, agentId, modelVersion, numSamples: 10, weight: 10, scale: 1, norm: 1, bytes: 4 * P, receivedAt: Date.now() };
}

function frame(roundId: number, modelVersion: number, value: number): Buffer {
  return encodeWeightFrame({ kind: 'delta', roundId, modelVersion, layoutHash: LAYOUT, numSamples: 10 }, new Float32Array(P).fill(value));
}

describe('replaying an open round after a restart', () => {
  it("folds in each spooled update again, and drops one whose spooled bytes are an older round's frame (the file is written over round after round)", () => {
    const file = tmp.file('c.db');
    const store = CoordinatorStore.open(file);
    store.saveInitialModel(new Float32Array(P), LAYOUT, Date.now());
    // Round 1 is applied: its spool file is kept for round 2 to write over.
    store.openRound(1, 0, Date.now());
    store.acceptUpdate(record(1, 'a', 0), frame(1, 0, 5));
    store.acceptUpdate(record(1, 'b', 0), frame(1, 0, 7));
    store.completeRound({ roundId: 1, newVersion: 1, layoutHash: LAYOUT, weights: new Float32Array(P), strategyState: null, closedAt: Date.now() });
    store.openRound(2, 1, Date.now());
    store.acceptUpdate(record(2, 'a', 1), frame(2, 1, 1));
    store.acceptUpdate(record(2, 'b', 1), frame(2, 1, 3));
    store.close();

    // A power cut under synchronous NORMAL: the row of b's round-2 update reached the disk, its spooled bytes did not,
    // and where it points the file still holds round 1's frame from b (same length, a valid checksum).
    const spoolFile = path.join(`${file}-spool`, 'round-2.frames');
    const bytes = readFileSync(spoolFile);
    const length = frame(1, 0, 0).byteLength;
    const fd = openSync(spoolFile, 'r+');
    writeSync(fd, frame(1, 0, 7), 0, length, length);
    closeSync(fd);
    expect(readFileSync(spoolFile).equals(bytes)).toBe(false);

    const reopened = CoordinatorStore.open(file);
    try {
      const strategy = new FedAvg();
      const model = new GlobalModel(new Float32Array(P), 1, LAYOUT);
      const { aggregator, replayed } = replayRound({ store: reopened, strategy, model, log: silentLogger }, 2);
      expect(replayed).toBe(1);
      // Only a's update (value 1) is in the round; the stale frame (value 7) is not.
      expect(aggregator.count).toBe(1);
      expect(aggregator.result()[0]).toBeCloseTo(1, 5);
      // And it is gone from the log, so the round's count is what was folded in.
      expect([...reopened.pendingUpdates(2)].map((u) => u.agentId)).toEqual(['a']);
    } finally {
      reopened.close();
    }
  });
});
