import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import { deterministicAgent, startCoordinator, waitFor, type Harness } from './helpers.js';

let harness: Harness | undefined;
let agents: AgentConnection[] = [];

afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
  await harness?.stop();
  harness = undefined;
});

describe('a FedAvg round with in-process agents', () => {
  it('the new global model is the sample-weighted mean of the clients\' models', async () => {
    const n = 1000;
    const initial = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const tokens = new Map([['a1', 't-a1'], ['a2', 't-a2'], ['a3', 't-a3']]);
    harness = await startCoordinator({ tokens, perRound: 3, overCommit: 1, rounds: 2, roundDeadlineMs: 10_000 }, n, initial);
    const spec = [
      { id: 'a1', samples: 10, value: (r: number) => 1 * r },
      { id: 'a2', samples: 30, value: (r: number) => -2 * r },
      { id: 'a3', samples: 60, value: (r: number) => 0.5 * r },
    ];
    agents = spec.map((s) => deterministicAgent(harness!.url, s.id, { samples: s.samples, value: s.value }));
    await harness.coordinator.finished;
    // Round r adds (10 * r - 60 * r + 30 * r) / 100 = -0.2 r to every weight.
    const expectedShift = -0.2 * 1 + -0.2 * 2;
    const model = harness.store.latestModel()!;
    expect(model.version).toBe(2);
    for (let i = 0; i < n; i += 97) expect(model.weights[i]).toBeCloseTo(initial[i]! + expectedShift, 5);
    const log = harness.store.updateLog();
    expect(log).toHaveLength(6);
    expect(log.every((u) => u.status === 'applied')).toBe(true);
    expect(harness.store.rounds().map((r) => r.status)).toEqual(['completed', 'completed']);
    await waitFor(() => agents.every((a) => a.acks.length === 2), 5000, 'acks');
    for (const a of agents) expect(a.acks.every((k) => k.accepted)).toBe(true);
  });

  it('an agent that disconnects mid-round: the round completes at its deadline with the others', async () => {
    harness = await startCoordinator({ perRound: 3, overCommit: 1, rounds: 1, roundDeadlineMs: 800, minCompletion: 0.5 }, 100);
    const ok1 = deterministicAgent(harness.url, 'ok1', { samples: 1, value: () => 1 });
    const ok2 = deterministicAgent(harness.url, 'ok2', { samples: 1, value: () => 3 });
    const slow = deterministicAgent(harness.url, 'gone', { samples: 1, value: () => 100, delayMs: 5000 });
    agents = [ok1, ok2];
    const started = Date.now();
    await waitFor(() => slow.state === 'ready' && harness!.coordinator.status().assigned > 0, 5000, 'assignment');
    await waitFor(() => ok1.acks.length > 0 && ok2.acks.length > 0, 5000, 'the fast agents');
    await slow.stop(); // drops out mid-round
    await harness.coordinator.finished;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(700);
    const model = harness.store.latestModel()!;
    expect(model.version).toBe(1);
    expect(model.weights[0]).toBeCloseTo(2, 5);
    expect(harness.store.rounds()[0]).toMatchObject({ status: 'completed', accepted: 2, dropped: 1 });
  });
});
