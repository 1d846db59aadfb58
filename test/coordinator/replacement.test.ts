import { afterAll, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import { RawClient, deterministicAgent, startCoordinator, waitFor, type Harness } from './helpers.js';

const DEADLINE_MS = 30_000;
const harnesses: Harness[] = [];
const agents: AgentConnection[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const h of harnesses) await h.stop();
});

/**
 * K = 2, no over-commit. The victim and `steady` are selected when round 1
 * opens; two spares connect after it, idle. The victim is killed (its socket
 * dies without a word) while it trains.
 */
async function killSelectedAgentMidRound(seed: number): Promise<{ h: Harness; assigned: string[] }> {
  const h = await startCoordinator({ perRound: 2, minClients: 2, overCommit: 1, rounds: 1, roundDeadlineMs: DEADLINE_MS, seed }, 32);
  harnesses.push(h);
  const assigned: string[] = [];
  const victim = new RawClient(h.url);
  await victim.hello('victim', 't');
  agents.push(deterministicAgent(h.url, 'steady', { samples: 10, value: () => 0.5, delayMs: 100 }));
  await victim.until(() => victim.binaries.length >= 1);
  for (const id of ['spare-a', 'spare-b']) agents.push(deterministicAgent(h.url, id, { samples: 10, value: () => (id === 'spare-a' ? 0.25 : 0.75), delayMs: 100 }));
  await waitFor(() => h.coordinator.clients().filter((c) => c.connected).length === 4, 10_000, 'four agents');
  expect(h.coordinator.clients().filter((c) => c.state === 'training').map((c) => c.clientId).sort()).toEqual(['steady', 'victim']);
  for (const c of h.coordinator.clients()) if (c.state === 'training') assigned.push(c.clientId);
  victim.close();
  await h.coordinator.finished;
  return { h, assigned };
}

describe('replacement on dropout', () => {
  it('a selected agent killed mid-round: an idle agent takes its place and the round ends long before its deadline', async () => {
    const { h } = await killSelectedAgentMidRound(7);
    const [round] = h.store.rounds();
    expect(round).toMatchObject({ roundId: 1, status: 'completed', accepted: 2, dropped: 1, selected: 3, newVersion: 1 });
    expect(round!.closedAt! - round!.startedAt).toBeLessThan(DEADLINE_MS / 3);
    const contributors = h.store.updateLog().map((u) => u.agentId).sort();
    expect(contributors).toHaveLength(2);
    expect(contributors).toContain('steady');
    const replacement = contributors.find((id) => id !== 'steady');
    expect(['spare-a', 'spare-b']).toContain(replacement);
    expect(h.coordinator.status().replacements).toBe(1);
    // The replacement's update is in the model: FedAvg of 0.5 (steady) and the spare's value, equal weights.
    const expected = (0.5 + (replacement === 'spare-a' ? 0.25 : 0.75)) / 2;
    expect(h.store.model(1)!.weights[0]).toBeCloseTo(expected, 6);

    // The same seed and the same events: the same replacement.
    const again = await killSelectedAgentMidRound(7);
    expect(again.h.store.updateLog().map((u) => u.agentId).sort()).toEqual(contributors);
  }, 60_000);
});
