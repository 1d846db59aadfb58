/**
 * Real `strata` child processes on loopback for the end-to-end suites:
 * JSON log lines (stderr) are parsed as they arrive so tests can wait on them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { LogEvent } from '../../common/log-events.js';

export const root = path.resolve(import.meta.dirname, '../..');
export const bin = path.join(root, 'dist/cli/strata.js');

/**
 * `npm test` runs the 5-agent end-to-end suite (~20 s) and the SIGTERM drain (~9 s); `STRATA_E2E=0` skips them.
 * The crash and dropout suites with real agent processes (~15-27 s each on a
 * loaded 2-core machine; in-process versions run by default in test/coordinator)
 * run with `STRATA_E2E=1`.
 */
export const e2eEnabled = process.env['STRATA_E2E'] !== '0';
export const e2eSlowEnabled = process.env['STRATA_E2E'] === '1';

export interface LogLine {
  msg?: string;
  event?: LogEvent;
  level?: number;
  roundId?: number;
  accepted?: number | boolean;
  replayed?: number;
  agentId?: string;
  code?: string;
  [key: string]: unknown;
}

export { freePort } from '../../testing/free-port.js';

export class StrataProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #buf = '';

  constructor(readonly name: string, args: string[], logLevel = 'info') {
    this.child = spawn(process.execPath, [bin, ...args], {
      // One training thread: several processes share 2 cores, and a thread pool stalls when its threads wait for a core.
      cwd: root, env: { ...process.env, STRATA_LOG_LEVEL: logLevel, STRATA_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#buf += chunk.toString();
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        try { this.lines.push(JSON.parse(line) as LogLine); } catch { /* not a log line */ }
      }
    });
    this.child.stdout!.on('data', (chunk: Buffer) => { this.stdout += chunk.toString(); });
  }

  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /** The lines marked with `event` (common/log-events.ts), in order. */
  logs(event: LogEvent): LogLine[] { return this.lines.filter((l) => l.event === event); }

  async waitLog(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (!this.running) throw new Error(`${this.name} exited while waiting for ${what}`);
      if (Date.now() > end) throw new Error(`${this.name}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Signals this process (by its own pid); resolves on exit. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

/** Owns the processes a suite starts, so `afterAll` can reap whatever is left. */
export class ProcessGroup {
  readonly all: StrataProcess[] = [];

  start(name: string, args: string[], logLevel?: string): StrataProcess {
    const p = new StrataProcess(name, args, logLevel);
    this.all.push(p);
    return p;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.all.map((p) => p.kill('SIGKILL')));
  }
}

export interface CoordinatorArgs {
  port: number; db: string; out: string; rounds: number; perRound: number; deadlineSeconds: number; extra?: string[];
}

export function coordinatorArgs(a: CoordinatorArgs): string[] {
  return [
    'coordinator', '--port', String(a.port), '--db', a.db, '--out', a.out, '--dataset', 'mnist', '--model', 'mlp',
    '--rounds', String(a.rounds), '--per-round', String(a.perRound), '--over-commit', '1', '--deadline', String(a.deadlineSeconds),
    '--optimizer', 'sgd', '--lr', '0.05', '--epochs', '1', '--batch', '32', '--method', 'er', '--replay', '0.5', '--heartbeat', '1000',
    ...(a.extra ?? []),
  ];
}

export interface AgentArgs {
  port: number; id: string; shard: string; db: string; out: string; samplesPerRound: number; tokens?: boolean; extra?: string[];
}

export function agentArgs(a: AgentArgs): string[] {
  return [
    'agent', '--url', `ws://127.0.0.1:${a.port}`, '--agent-id', a.id, '--token', `t-${a.id}`, '--profile', 'raspberry-pi-4',
    '--dataset', 'mnist', '--shard', a.shard, '--db', a.db, '--out', a.out, '--samples-per-round', String(a.samplesPerRound),
    '--reconnect-max', '1', ...(a.extra ?? []),
  ];
}
