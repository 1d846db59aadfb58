import { once } from 'node:events';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { WebSocket } from 'ws';
import { AgentConnection, type TrainFn } from '../../client-runtime/agent-connection.js';
import { Coordinator, FedAvg, type CoordinatorOptions, type FederatedStrategy } from '../../coordinator/index.js';
import { PROTOCOL_VERSION, encodeMessage, parseMessage, type Message } from '../../protocol/index.js';
import type { SqliteDatabase } from '../../storage-tier/sqlite.js';
import { CoordinatorStore } from '../../storage-tier/coordinator-store.js';

export const silentLogger: Logger = pino({ level: process.env['STRATA_TEST_LOG'] ?? 'silent' });

export interface Harness {
  coordinator: Coordinator;
  store: CoordinatorStore;
  url: string;
  stop(): Promise<void>;
}

export async function startCoordinator(
  options: CoordinatorOptions, numParams: number, initial?: Float32Array, dbFile = ':memory:', strategy: FederatedStrategy = new FedAvg(),
): Promise<Harness> {
  const store = CoordinatorStore.open(dbFile === ':memory:' ? (new Database(':memory:') as unknown as SqliteDatabase) : dbFile);
  const coordinator = new Coordinator({ port: 0, ...options }, {
    strategy, store, model: { layout: [{ name: 'w', shape: [numParams] }], initialWeights: () => initial ?? new Float32Array(numParams) }, logger: silentLogger,
  });
  await coordinator.start();
  return {
    coordinator, store, url: coordinator.url,
    stop: async () => {
      await coordinator.stop(0);
      store.close();
    },
  };
}

/** A lightweight agent whose update is `delta = value(agent, round)` everywhere, with `samples` samples. */
export function deterministicAgent(url: string, agentId: string, opts: { token?: string; samples: number; value: (roundId: number) => number; delayMs?: number; uploadGrants?: boolean }): AgentConnection {
  const train: TrainFn = async (a, global, signal) => {
    if (opts.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, opts.delayMs);
        signal.addEventListener('abort', () => { clearTimeout(t); reject(new Error('aborted')); }, { once: true });
      });
    }
    return {
      delta: new Float32Array(global.length).fill(opts.value(a.roundId)),
      metrics: { numSamples: opts.samples, loss: 0.5, accuracy: 0.5, deviceSeconds: 0.1, hostSeconds: 0.01 },
    };
  };
  const agent = new AgentConnection({
    url, agentId, token: opts.token ?? `t-${agentId}`, profile: 'test', train, logger: silentLogger, backoff: { initialMs: 50, maxMs: 500 },
    ...(opts.uploadGrants === undefined ? {} : { uploadGrants: opts.uploadGrants }),
  });
  agent.start();
  return agent;
}

/** A raw client: connect, optionally hello, collect every message and the close. */
export class RawClient {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  readonly binaries: Buffer[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly #waiters: Array<() => void> = [];

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaries.push(data as Buffer);
      else this.messages.push(parseMessage(data as Buffer));
      this.#notify();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#notify();
    });
    this.ws.on('error', () => undefined);
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async open(): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) await once(this.ws, 'open');
  }

  async hello(agentId: string, token: string, extra: Record<string, unknown> = {}): Promise<void> {
    await this.open();
    this.ws.send(JSON.stringify({
      type: 'hello', protocolVersion: PROTOCOL_VERSION, agentId, token, profile: 'test', capabilities: { models: [], datasets: [], clMethods: [] }, ...extra,
    }));
  }

  send(m: Message): void {
    this.ws.send(encodeMessage(m));
  }

  /** Wait until `pred` holds over what was received (checked on every message), or time out. */
  async until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out; got ${JSON.stringify(this.messages.map((m) => m.type === 'error' ? m.code : m.type))} closed=${JSON.stringify(this.closed)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  errorCodes(): string[] {
    return this.messages.flatMap((m) => (m.type === 'error' ? [m.code] : []));
  }

  close(): void {
    this.ws.terminate();
  }
}

export async function waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
