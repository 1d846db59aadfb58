import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import type { EpisodicMemory } from './carm/episodic-memory.js';
import { STREAM_START, type StreamPosition } from './device-stream.js';

/**
 * What a device keeps between rounds besides its sample store: where it is
 * in its stream, the classes and tasks it has seen, its held-out samples,
 * and its plugins' state. An agent keeps it across restarts; a simulated
 * client across the slots that run it.
 */
export interface DeviceState {
  position: StreamPosition;
  roundsTrained: number;
  /** Classes seen so far, and the current continual-learning task (bumped when new classes arrive). */
  seenClasses: number[];
  task: number;
  /** The task the device last trained (-1: none yet); training a different one is a task boundary. */
  lastTrainedTask: number;
  /** Rows of the device's split held out as validation (Miro), over every task seen. */
  validation: number[];
  /** Modelled joules of every round so far, and of Miro's profiling among them (what a profiling budget weighs). */
  energy: { joules: number; profilingJoules: number };
  /** Memory-hierarchy knobs in force (Miro may have changed them). */
  knobs: { memory: number; streamBuffer: number; swapRatio: number } | null;
  /** Plugins' own state (Miro's navigator, boundaries), keyed by plugin. */
  plugins: Record<string, unknown>;
}

export function initialDeviceState(): DeviceState {
  return { position: { ...STREAM_START }, roundsTrained: 0, seenClasses: [], task: 0, lastTrainedTask: -1, validation: [], energy: { joules: 0, profilingJoules: 0 }, knobs: null, plugins: {} };
}

/** The state file and the episodic-memory snapshot beside a device's store (`<base>.device.json`, `<base>.em.bin`). */
export class DeviceStateFiles {
  readonly stateFile: string;
  readonly memoryFile: string;

  constructor(base: string) {
    this.stateFile = `${base}.device.json`;
    this.memoryFile = `${base}.em.bin`;
  }

  /** The saved state, or a fresh one (an unreadable file is reported, not fatal: the device starts its stream over). */
  load(onBad?: (file: string) => void): DeviceState {
    if (!existsSync(this.stateFile)) return initialDeviceState();
    try {
      const s = JSON.parse(readFileSync(this.stateFile, 'utf8')) as Partial<DeviceState>;
      const fresh = initialDeviceState();
      const nat = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
      return {
        position: s.position !== undefined && nat(s.position.taken) && nat(s.position.lastRound) ? s.position : fresh.position,
        roundsTrained: nat(s.roundsTrained) ? s.roundsTrained : 0,
        seenClasses: Array.isArray(s.seenClasses) ? s.seenClasses.filter(nat) : [],
        task: nat(s.task) ? s.task : 0,
        lastTrainedTask: Number.isSafeInteger(s.lastTrainedTask) && (s.lastTrainedTask as number) >= -1 ? s.lastTrainedTask as number : -1,
        validation: Array.isArray(s.validation) ? s.validation.filter(nat) : [],
        energy: s.energy !== undefined && Number.isFinite(s.energy.joules) && Number.isFinite(s.energy.profilingJoules) ? s.energy : fresh.energy,
        knobs: s.knobs ?? null,
        plugins: typeof s.plugins === 'object' && s.plugins !== null ? s.plugins : {},
      };
    } catch {
      onBad?.(this.stateFile);
      return initialDeviceState();
    }
  }

  save(state: DeviceState): void {
    atomicWrite(this.stateFile, JSON.stringify(state));
  }

  /** The EM's samples, saved so the next round (or the next process) starts with the same memory. */
  saveMemory(memory: EpisodicMemory): void {
    const entries: MemorySnapshot['entries'] = [];
    for (let s = 0; s < memory.size; s++) {
      entries.push({ features: memory.featuresOf(s).slice(), label: memory.labelOf(s), task: memory.taskOf(s), logits: memory.logitsOf(s)?.slice() ?? null });
    }
    atomicWrite(this.memoryFile, v8.serialize({ entries } satisfies MemorySnapshot));
  }

  /**
   * Refills an empty EM from the snapshot. The EM of a federated device is
   * class-balanced rather than a reservoir: re-observing the saved samples
   * would restart a reservoir's "samples seen" count and let each round's
   * stream flush the old classes out.
   */
  loadMemory(memory: EpisodicMemory): number {
    if (!existsSync(this.memoryFile)) return 0;
    let snap: MemorySnapshot;
    try {
      snap = v8.deserialize(readFileSync(this.memoryFile)) as MemorySnapshot;
    } catch {
      return 0;
    }
    for (const e of snap.entries) memory.observe(e.features, e.label, e.task, e.logits ?? undefined);
    return snap.entries.length;
  }
}

interface MemorySnapshot {
  entries: { features: Uint8Array | Float32Array; label: number; task: number; logits: Float32Array | null }[];
}

function atomicWrite(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
