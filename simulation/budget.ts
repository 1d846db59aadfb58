import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../common/strata-error.js';
import type { BudgetRequest } from './simulation-config.js';

/**
 * Per-client CPU budgets, enforced for real:
 * - `cgroup-v1`: a cpu-controller group per client slot with
 *   `cpu.cfs_quota_us / cpu.cfs_period_us = share`; slot threads join by TID
 *   (v1 `tasks` takes threads), naive-mode processes by PID (`cgroup.procs`).
 * - `cgroup-v2`: the same with `cpu.max`, slot groups made `threaded` under
 *   a per-worker domain group (`cgroup.threads` takes TIDs).
 * - `duty`: no kernel help; the client's own thread sleeps after each step so
 *   its CPU time stays at `share` of wall time (see `DutyCycleThrottle`).
 * - `off`: clients run flat out (packing then counts each as one core).
 */
export type EnforcerKind = 'cgroup-v1' | 'cgroup-v2' | 'duty' | 'off';

export interface EnforcerInfo {
  kind: EnforcerKind;
  requested: BudgetRequest;
  /** The run's cgroup directory (cgroup kinds). */
  root: string | null;
  /** How detection went: what was tried and why it was passed over. */
  notes: string[];
}

/** The smallest quota the kernel accepts is 1 ms; a 20 ms period keeps throttling smooth for shares >= 0.05. */
const BASE_PERIOD_US = 20_000;
const MIN_QUOTA_US = 1_000;

export function periodFor(share: number): { periodUs: number; quotaUs: number } {
  const periodUs = Math.min(1_000_000, Math.max(BASE_PERIOD_US, Math.ceil(MIN_QUOTA_US / share)));
  return { periodUs, quotaUs: Math.max(MIN_QUOTA_US, Math.round(share * periodUs)) };
}

interface Mount { dir: string; type: 'cgroup' | 'cgroup2'; options: string[] }

function mounts(): Mount[] {
  try {
    return readFileSync('/proc/self/mounts', 'utf8').split('\n').flatMap((line) => {
      const [, dir, type, opts] = line.split(' ');
      if (dir === undefined || (type !== 'cgroup' && type !== 'cgroup2')) return [];
      return [{ dir: dir.replace(/\\040/g, ' '), type, options: (opts ?? '').split(',') }];
    });
  } catch {
    return [];
  }
}

/** Our own cgroup path within a hierarchy (`/proc/self/cgroup`). */
function ownCgroup(match: (controllers: string[]) => boolean): string {
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [id, ctrl, p] = line.split(':');
      if (id === undefined || p === undefined) continue;
      if (match(ctrl === '' ? [] : (ctrl ?? '').split(','))) return p;
    }
  } catch { /* not Linux */ }
  return '/';
}

function tryWrite(file: string, value: string): string | null {
  try {
    writeFileSync(file, value);
    return null;
  } catch (err) {
    return `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

/** Removes a cgroup directory tree, children first (cgroup dirs hold only pseudo-files). */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch { /* still has tasks (a thread not yet gone); the kernel frees it when they exit */ }
}

/**
 * `threads`: how many client threads may run at once; the run's group gets
 * that many threads' worth of CPU weight (cpu.shares / cpu.weight).
 * Finds a writable CPU controller: cgroup v1 `cpu` (the mount with the `cpu`
 * option), else cgroup v2 with `cpu` in `cgroup.controllers`; creates the
 * run's group and proves a quota can be written. Falls back to the duty
 * cycle under `auto`; `cgroup` without a writable controller is an error.
 */
export function detectEnforcer(request: BudgetRequest, runName: string, threads = 1): EnforcerInfo {
  const notes: string[] = [];
  if (request === 'off') return { kind: 'off', requested: request, root: null, notes: ['budgets not enforced (--budget off)'] };
  if (request === 'duty') return { kind: 'duty', requested: request, root: null, notes: ['duty-cycle throttle requested'] };
  const all = mounts();
  const v1 = all.find((m) => m.type === 'cgroup' && m.options.includes('cpu'));
  if (v1 !== undefined) {
    const base = path.join(v1.dir, ownCgroup((c) => c.includes('cpu')));
    sweepStale(base);
    const root = path.join(base, runName);
    try {
      mkdirSync(root, { recursive: true });
      const probe = path.join(root, 'probe');
      mkdirSync(probe, { recursive: true });
      const err = tryWrite(path.join(probe, 'cpu.cfs_period_us'), String(BASE_PERIOD_US)) ?? tryWrite(path.join(probe, 'cpu.cfs_quota_us'), String(BASE_PERIOD_US / 4));
      rmdirSync(probe);
      if (err === null) {
        // Without this the whole run would weigh as one task against every other runnable thread on the host.
        tryWrite(path.join(root, 'cpu.shares'), String(Math.min(262_144, 1024 * Math.max(1, threads))));
        return { kind: 'cgroup-v1', requested: request, root, notes: [...notes, `cgroup v1 cpu controller at ${v1.dir}`] };
      }
      notes.push(`cgroup v1 at ${v1.dir}: cannot set a quota (${err})`);
      removeCgroupTree(root);
    } catch (err) {
      notes.push(`cgroup v1 at ${v1.dir}: cannot create ${root} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  } else notes.push('no cgroup v1 cpu controller mounted');
  const v2 = all.find((m) => m.type === 'cgroup2');
  if (v2 !== undefined) {
    const controllers = safeRead(path.join(v2.dir, 'cgroup.controllers')).split(/\s+/);
    if (!controllers.includes('cpu')) notes.push(`cgroup v2 at ${v2.dir}: no cpu controller`);
    else {
      const parent = path.join(v2.dir, ownCgroup((c) => c.length === 0));
      sweepStale(parent);
      const root = path.join(parent, runName);
      try {
        tryWrite(path.join(parent, 'cgroup.subtree_control'), '+cpu');
        mkdirSync(root, { recursive: true });
        const err = tryWrite(path.join(root, 'cgroup.subtree_control'), '+cpu')
          ?? (existsSync(path.join(root, 'cpu.max')) ? null : `${root}: cpu controller not enabled for the run group`);
        if (err === null) {
          const probe = path.join(root, 'probe');
          mkdirSync(probe, { recursive: true });
          const e2 = tryWrite(path.join(probe, 'cpu.max'), `${BASE_PERIOD_US / 4} ${BASE_PERIOD_US}`);
          rmdirSync(probe);
          if (e2 === null) {
            tryWrite(path.join(root, 'cpu.weight'), String(Math.min(10_000, 100 * Math.max(1, threads))));
            return { kind: 'cgroup-v2', requested: request, root, notes: [...notes, `cgroup v2 cpu controller at ${v2.dir}`] };
          }
          notes.push(`cgroup v2: cannot set cpu.max (${e2})`);
        } else notes.push(`cgroup v2: ${err}`);
        removeCgroupTree(root);
      } catch (err) {
        notes.push(`cgroup v2 at ${v2.dir}: cannot create ${root} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
  } else notes.push('no cgroup v2 mounted');
  if (request === 'cgroup') {
    throw new StrataError('STRATA_ERR_BUDGET_UNAVAILABLE', `--budget cgroup: no writable cgroup CPU controller here (${notes.join('; ')}); use --budget duty or auto`, { flag: '--budget' });
  }
  notes.push('falling back to the duty-cycle throttle');
  return { kind: 'duty', requested: request, root: null, notes };
}

/** Removes run groups left behind by simulations whose host process is gone (`strata-sim-PID-...`). */
function sweepStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^strata-sim-(\d+)-/.exec(name);
    if (m === null) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      removeCgroupTree(path.join(parent, name));
    }
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * One CPU-limited group (a client slot, or a naive-mode client process).
 * v2 slot groups are `threaded` children of the worker's domain group, so
 * single threads of the worker can be moved into them.
 */
export class CpuGroup {
  readonly dir: string;
  readonly kind: 'cgroup-v1' | 'cgroup-v2';
  #share = 0;

  private constructor(dir: string, kind: 'cgroup-v1' | 'cgroup-v2') {
    this.dir = dir;
    this.kind = kind;
  }

  /** `threaded`: a v2 group for threads of a process already in its parent. */
  static create(kind: 'cgroup-v1' | 'cgroup-v2', dir: string, options: { threaded?: boolean } = {}): CpuGroup {
    mkdirSync(dir, { recursive: true });
    if (kind === 'cgroup-v2' && options.threaded === true) {
      must(tryWrite(path.join(dir, 'cgroup.type'), 'threaded'));
      must(tryWrite(path.join(path.dirname(dir), 'cgroup.subtree_control'), '+cpu'));
    }
    return new CpuGroup(dir, kind);
  }

  /** A v2 domain group for a worker process, whose threads then go into threaded children. */
  static workerDomain(kind: 'cgroup-v1' | 'cgroup-v2', dir: string, pid: number): CpuGroup {
    mkdirSync(dir, { recursive: true });
    if (kind === 'cgroup-v2') must(tryWrite(path.join(dir, 'cgroup.procs'), String(pid)));
    return new CpuGroup(dir, kind);
  }

  get share(): number {
    return this.#share;
  }

  setShare(share: number): void {
    if (share === this.#share) return;
    const { periodUs, quotaUs } = periodFor(share);
    if (this.kind === 'cgroup-v1') {
      // Unlimited first, so no intermediate (period, quota) pair is rejected; the slot is idle between jobs.
      must(tryWrite(path.join(this.dir, 'cpu.cfs_quota_us'), '-1'));
      must(tryWrite(path.join(this.dir, 'cpu.cfs_period_us'), String(periodUs)));
      must(tryWrite(path.join(this.dir, 'cpu.cfs_quota_us'), String(quotaUs)));
    } else {
      must(tryWrite(path.join(this.dir, 'cpu.max'), `${quotaUs} ${periodUs}`));
    }
    this.#share = share;
  }

  addThread(tid: number): void {
    must(tryWrite(path.join(this.dir, this.kind === 'cgroup-v1' ? 'tasks' : 'cgroup.threads'), String(tid)));
  }

  addProcess(pid: number): void {
    must(tryWrite(path.join(this.dir, 'cgroup.procs'), String(pid)));
  }

  /** Throttled periods and time so far (`cpu.stat`), for the report. */
  stat(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const line of safeRead(path.join(this.dir, 'cpu.stat')).split('\n')) {
      const [k, v] = line.split(' ');
      if (k !== undefined && v !== undefined && k !== '') out[k] = Number(v);
    }
    return out;
  }
}

function must(err: string | null): void {
  if (err !== null) throw new StrataError('STRATA_ERR_BUDGET_CGROUP', `cgroup write failed: ${err}`);
}
