import type { ClPlugin, TaskTiming } from './cl-plugin.js';
import { WRITE_BATCH_SAMPLES, type DeviceAccounting, type DeviceWork } from './device-accounting.js';

/** Device time and energy of one `trainTask` call (a task, or a chunk of one); profiling before it not included. */
export interface TaskEnergy {
  task: number;
  /** Counted training FLOPs. */
  flops: number;
  /** Host seconds of its training compute (diagnostic). */
  hostSeconds: number;
  deviceSeconds: number;
  joules: number;
}

/**
 * The counted device work of a `trainTask` call: its training FLOPs, the
 * stream samples the background writer commits (one synced write per
 * `WRITE_BATCH_SAMPLES`), the stored samples the swap policy read and those
 * that filled a grown EM at the boundary.
 */
export function taskWork(timing: TaskTiming, sampleBytes: number): DeviceWork {
  const reads = timing.swapReads + timing.fillReads;
  return {
    flops: timing.flops,
    hostSeconds: timing.computeSeconds,
    storage: {
      writeBytes: timing.persistedSamples * sampleBytes,
      writes: Math.ceil(timing.persistedSamples / WRITE_BATCH_SAMPLES),
      readBytes: reads * sampleBytes,
      reads,
    },
  };
}

export interface DeviceAccountingPluginOptions {
  /** Payload bytes of one stored sample (features, plus logits with DER++). */
  sampleBytes: number;
}

/** Device accounting as a plugin of the CL loop: after each call, its counted work is priced as training. */
export class DeviceAccountingPlugin implements ClPlugin {
  readonly name = 'device-accounting';
  readonly accounting: DeviceAccounting;
  readonly #sampleBytes: number;
  readonly #perTask: TaskEnergy[] = [];

  constructor(accounting: DeviceAccounting, options: DeviceAccountingPluginOptions) {
    this.accounting = accounting;
    this.#sampleBytes = options.sampleBytes;
  }

  /** Each call's device time and joules, in order. */
  get perTask(): readonly TaskEnergy[] {
    return this.#perTask;
  }

  afterTask(timing: TaskTiming): void {
    const j0 = this.accounting.joules;
    const deviceSeconds = this.accounting.account('training', taskWork(timing, this.#sampleBytes));
    this.#perTask.push({ task: timing.task, flops: timing.flops, hostSeconds: timing.computeSeconds, deviceSeconds, joules: this.accounting.joules - j0 });
  }
}
