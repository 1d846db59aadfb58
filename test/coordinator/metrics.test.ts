import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentConnection } from '../../client-runtime/agent-connection.js';
import { encodeWeightFrame, type RoundAssignmentMessage } from '../../protocol/index.js';
import { RawClient, deterministicAgent, startCoordinator, waitFor, type Harness } from './helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-metrics-'));
const harnesses: Harness[] = [];
const agents: AgentConnection[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const h of harnesses) await h.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(base: string): Promise<{ text: string; families: Map<string, PrometheusFamily> }> {
  const r = await fetch(`${base}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  return { text, families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])) };
}

function value(families: Map<string, PrometheusFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  expect(f, name).toBeDefined();
  const m = f!.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
  expect(m, `${name} ${JSON.stringify(labels)}`).toBeDefined();
  return Number(m!.value ?? m!.count);
}

describe('/metrics', () => {
  it('parses as Prometheus text: the counters, four histograms and the process metrics', async () => {
    const N = 1000;
    const h = await startCoordinator({ perRound: 2, minClients: 1, overCommit: 1, rounds: 3, roundDeadlineMs: 20_000 }, N);
    harnesses.push(h);
    // One client sends a non-finite update in round 1 (rejected with its code), then leaves; two honest ones run three rounds.
    const bad = new RawClient(h.url);
    await bad.hello('m-bad', 't');
    await bad.until(() => bad.binaries.length >= 1);
    const a = bad.messages.find((m): m is RoundAssignmentMessage => m.type === 'round-assignment')!;
    bad.send({
      type: 'result', roundId: a.roundId, modelVersion: a.modelVersion, metrics: { numSamples: 5, loss: 1, accuracy: 0.1, deviceSeconds: 0, hostSeconds: 0 },
      joules: { compute: 0, storage: 0, radio: 0, idle: 0, total: 0 }, energySource: 'model',
    });
    bad.ws.send(encodeWeightFrame({ kind: 'delta', roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples: 5 }, new Float32Array(N).fill(Number.NaN)));
    await bad.until(() => bad.messages.some((m) => m.type === 'update-ack'));
    bad.close();
    for (const id of ['m-1', 'm-2']) agents.push(deterministicAgent(h.url, id, { samples: 10, value: () => 0.01, delayMs: 20 }));
    await h.coordinator.finished;

    const { families } = await scrape(h.coordinator.httpUrl);
    const type = (name: string): string | undefined => families.get(name)?.type;
    expect(type('strata_rounds_completed_total')).toBe('COUNTER');
    expect(value(families, 'strata_rounds_completed_total')).toBe(3);
    expect(value(families, 'strata_updates_accepted_total')).toBe(6);
    expect(value(families, 'strata_updates_rejected_total', { code: 'STRATA_ERR_NON_FINITE' })).toBe(1);
    for (const name of ['strata_protocol_errors_total', 'strata_assignments_dropped_total', 'strata_connections_total', 'strata_aggregation_bytes_total',
      'strata_aggregation_seconds_total', 'strata_persist_seconds_total', 'strata_replacements_total']) expect(type(name), name).toBe('COUNTER');
    expect(value(families, 'strata_aggregation_bytes_total')).toBe(6 * N * 4);

    // Histograms: one observation per round, per accepted update.
    for (const [name, count] of [
      ['strata_round_duration_seconds', 3], ['strata_update_bytes', 6], ['strata_assignment_to_update_seconds', 6], ['strata_update_persist_seconds', 6],
    ] as const) {
      const f = families.get(name)!;
      expect(f.type, name).toBe('HISTOGRAM');
      expect(Number(f.metrics[0]!.count), name).toBe(count);
      expect(Number(f.metrics[0]!.buckets!['+Inf']), name).toBe(count);
    }
    const bytes = families.get('strata_update_bytes')!.metrics[0]!;
    expect(Number(bytes.sum)).toBe(6 * N * 4);
    expect(Number(bytes.buckets!['1000'])).toBe(0);
    expect(Number(bytes.buckets!['10000'])).toBe(6);

    expect(value(families, 'strata_model_version')).toBe(3);
    expect(type('strata_connected_clients')).toBe('GAUGE');
    // The default process metrics.
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds']) {
      expect(families.has(name), name).toBe(true);
    }
  });

  it('resident memory, heap and the exposition stay flat over 2,000 rounds of a tiny model', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const ROUNDS = 2000;
    const h = await startCoordinator({ perRound: 1, minClients: 1, overCommit: 1, rounds: ROUNDS, roundDeadlineMs: 20_000 }, 16, undefined, path.join(dir, 'long.db'));
    harnesses.push(h);
    agents.push(deterministicAgent(h.url, 'long-1', { samples: 1, value: (r) => (r % 7) * 1e-3 }));
    const sample = async (): Promise<{ heap: number; rss: number; lines: number }> => {
      gc();
      const m = process.memoryUsage();
      const { text } = await scrape(h.coordinator.httpUrl);
      return { heap: m.heapUsed, rss: m.rss, lines: text.split('\n').filter((l) => l.startsWith('strata_')).length };
    };
    const version = (): number => h.coordinator.model?.version ?? 0;
    await waitFor(() => version() >= 500, 120_000, 'round 500');
    const at500 = await sample();
    await h.coordinator.finished;
    const at2000 = await sample();
    expect(version()).toBe(ROUNDS);
    const mib = (b: number): number => b / 2 ** 20;
    // 1,500 more rounds: the same series, and (within allocator noise) the same memory.
    expect(at2000.lines).toBe(at500.lines);
    expect(mib(at2000.heap - at500.heap)).toBeLessThan(4);
    expect(mib(at2000.rss - at500.rss)).toBeLessThan(24);
    const status = h.coordinator.status();
    expect(status.roundsCompleted).toBe(ROUNDS);
  }, 240_000);
});
