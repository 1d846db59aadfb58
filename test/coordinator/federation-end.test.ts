import { afterAll, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import type { ByeMessage } from '../../protocol/index.js';
import { RawClient, deterministicAgent, startCoordinator, type Harness } from './helpers.js';

let harness: Harness | undefined;
const agents: AgentConnection[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await harness?.stop();
});

describe('the end of a federation', () => {
  it('the coordinator says bye with a reason to every agent when it reaches its rounds, and closes normally', async () => {
    harness = await startCoordinator({ perRound: 2, minClients: 2, overCommit: 1, rounds: 2, roundDeadlineMs: 20_000 }, 8);
    const byes: Array<{ id: string; m: ByeMessage }> = [];
    for (const id of ['end-1', 'end-2']) {
      const a = deterministicAgent(harness.url, id, { samples: 4, value: () => 0.1 });
      a.on('bye', (m: ByeMessage) => byes.push({ id, m }));
      agents.push(a);
    }
    // A connected agent that never trains is told too.
    const idle = new RawClient(harness.url);
    await idle.hello('end-idle', 't');
    await harness.coordinator.finished;
    await harness.coordinator.stop();
    await idle.until(() => idle.closed !== undefined);
    expect(byes.map((b) => b.id).sort()).toEqual(['end-1', 'end-2']);
    for (const { m } of byes) expect(m).toMatchObject({ type: 'bye', final: true, roundsCompleted: 2, reason: expect.stringMatching(/complete/) });
    expect(idle.messages.at(-1)).toMatchObject({ type: 'bye', final: true, roundsCompleted: 2 });
    expect(idle.closed).toEqual({ code: 1000, reason: 'bye' });
  });

  it('a drain that is not the end (SIGTERM before --rounds) closes with STRATA_ERR_SHUTTING_DOWN, no bye', async () => {
    const h = await startCoordinator({ perRound: 2, minClients: 2, overCommit: 1, rounds: 50, roundDeadlineMs: 20_000 }, 8);
    const c = new RawClient(h.url);
    await c.hello('drain-1', 't');
    await c.until(() => c.messages.some((m) => m.type === 'welcome'));
    await h.stop();
    await c.until(() => c.closed !== undefined);
    expect(c.messages.some((m) => m.type === 'bye')).toBe(false);
    expect(c.closed).toEqual({ code: 1001, reason: 'STRATA_ERR_SHUTTING_DOWN' });
  });
});
