import { describe, expect, it } from 'vitest';
import { DeviceStream, STREAM_START } from '../../client-runtime/device-stream.js';
import type { DataSplit } from '../../ml/datasets/dataset.js';

/** 40 samples, labels 0..3 in turn. */
const split: DataSplit = { features: new Uint8Array(40), labels: Uint8Array.from({ length: 40 }, (_, i) => i % 4), count: 40 };
const all = Int32Array.from({ length: 40 }, (_, i) => i);

describe('a device stream', () => {
  it('whole: every round brings all of the device\'s samples', () => {
    const s = new DeviceStream(split, all, { kind: 'whole' });
    const r = s.arrivals(3, STREAM_START);
    expect(Array.from(r.arrivals.train.indices)).toEqual(Array.from(all));
    expect(r.arrivals.train.classes).toEqual([0, 1, 2, 3]);
    expect(r.arrivals.backlog).toEqual([]);
    expect(s.trainSamples(3)).toBe(40);
  });

  it('chunks: the next samples each round it trains, cycling through its data', () => {
    const s = new DeviceStream(split, all, { kind: 'chunks', samplesPerRound: 15 });
    const a = s.arrivals(1, STREAM_START);
    const b = s.arrivals(7, a.next);
    const c = s.arrivals(8, b.next);
    expect(Array.from(a.arrivals.train.indices)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(Array.from(b.arrivals.train.indices)).toEqual(Array.from({ length: 15 }, (_, i) => 15 + i));
    expect(Array.from(c.arrivals.train.indices)).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 0, 1, 2, 3, 4]);
    expect(c.next.taken).toBe(45);
  });

  it('tasks: classes arrive task by task in equal slices; slices of rounds the device missed come as backlog', () => {
    const s = new DeviceStream(split, all, { kind: 'tasks', tasks: [[2, 0], [1, 3]], roundsPerTask: 2 });
    const r1 = s.arrivals(1, STREAM_START);
    expect(r1.arrivals.train.classes).toEqual([0, 2]);
    expect(r1.arrivals.train.indices).toHaveLength(10);
    // Picked again only in round 4: round 2's and 3's slices arrive as backlog, round 4's is trained.
    const r4 = s.arrivals(4, r1.next);
    expect(r4.arrivals.backlog.map((b) => b.classes)).toEqual([[0, 2], [1, 3]]);
    expect(r4.arrivals.train.classes).toEqual([1, 3]);
    expect(s.taskOfRound(4)).toBe(1);
    expect(s.taskOfRound(9)).toBe(1);
    const seen = [...r1.arrivals.train.indices, ...r4.arrivals.backlog.flatMap((b) => [...b.indices]), ...r4.arrivals.train.indices];
    expect(new Set(seen).size).toBe(40);
    expect(s.trainSamples(4)).toBe(10);
  });

  it('refuses an empty device and a bad schedule with coded errors', () => {
    expect(() => new DeviceStream(split, new Int32Array(0), { kind: 'whole' })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_DATASET_EMPTY' }));
    expect(() => new DeviceStream(split, all, { kind: 'chunks', samplesPerRound: 0 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
    expect(() => new DeviceStream(split, all, { kind: 'tasks', tasks: [], roundsPerTask: 1 })).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION' }));
  });
});
