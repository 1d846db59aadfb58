import { z } from 'zod';

/**
 * A device profile: what one kind of edge device can do and what it costs in
 * power. Units are fixed and decimal: MB = 10^6 bytes, Mbit = 10^6 bits,
 * seconds, milliseconds, watts.
 *
 * Power model (all in watts):
 * - `idleW`: what the device draws doing nothing; charged for every device
 *   second, whatever else happens.
 * - `computeW`, `storageW`, `radioTxW`, `radioRxW`: the ACTIVE DELTA above
 *   idle while that component works. Total draw while training is therefore
 *   `idleW + computeW`, never `computeW` alone.
 */

/** Dotted paths of every number a profile holds; `sources` is keyed by these. */
export const PROFILE_NUMBER_FIELDS = [
  'compute.speedFactor',
  'compute.cpuShare',
  'compute.gflops',
  'memory.learningRamMB',
  'storage.readMBps',
  'storage.writeMBps',
  'storage.latencyMs',
  'network.upMbps',
  'network.downMbps',
  'network.rttMs',
  'power.idleW',
  'power.computeW',
  'power.storageW',
  'power.radioTxW',
  'power.radioRxW',
  'availability.dropoutRate',
] as const;
export type ProfileNumberField = (typeof PROFILE_NUMBER_FIELDS)[number];

/** Fields a profile computes itself when the file leaves them out, so they need no citation. */
const DERIVED_FIELDS: ReadonlySet<ProfileNumberField> = new Set(['compute.cpuShare', 'compute.gflops']);

/**
 * Effective training GFLOP/s of the reference host (one core of this VM):
 * counted training FLOPs (see `ml/work-count.ts`) per second of Strata's
 * MLP trainer. `profiles/devices/reference-host.json` states it with its
 * measurement; a profile without `compute.gflops` gets `speedFactor x` this.
 */
export const REFERENCE_HOST_GFLOPS = 12;

/** A profile's compute throughput when its file does not state one: `speedFactor x REFERENCE_HOST_GFLOPS`. */
export function gflopsFor(speedFactor: number): number {
  return Math.round(speedFactor * REFERENCE_HOST_GFLOPS * 1e6) / 1e6;
}

/** The smallest compute budget a simulation can enforce (cgroup quotas bottom out near 1%). */
export const MIN_CPU_SHARE = 0.01;

/**
 * The compute budget, as a share of one host core, that makes a client on
 * this host train as fast as the device would: the speed factor, capped at
 * one core (Strata trains single-threaded) and floored at `MIN_CPU_SHARE`.
 */
export function cpuShareFor(speedFactor: number): number {
  const share = Math.round(speedFactor * 10_000) / 10_000;
  return Math.min(1, Math.max(MIN_CPU_SHARE, share));
}

const positive = () => z.number().finite().positive();
const nonNegative = () => z.number().finite().nonnegative();

const computeSchema = z.strictObject({
  /**
   * Training throughput relative to the reference host; < 1 is slower. Sets
   * the simulation's CPU budget (`cpuShare`) and, when `gflops` is absent,
   * the price of compute.
   */
  speedFactor: positive(),
  /** Optional in the file; derived from `speedFactor` when absent (see `cpuShareFor`). */
  cpuShare: positive().max(1).optional(),
  /**
   * Effective training throughput in GFLOP/s (10^9 counted FLOPs per second,
   * see `ml/work-count.ts`): what prices a step's compute. Optional in the
   * file; derived as `speedFactor x REFERENCE_HOST_GFLOPS` when absent.
   */
  gflops: positive().optional(),
});

const memorySchema = z.strictObject({
  /** RAM available to learning (model, optimiser, episodic memory), MB. */
  learningRamMB: positive(),
});

const storageSchema = z.strictObject({
  readMBps: positive(),
  writeMBps: positive(),
  /** Latency per I/O request (random read or synced write), ms. */
  latencyMs: nonNegative(),
});

const networkSchema = z.strictObject({
  upMbps: positive(),
  downMbps: positive(),
  rttMs: nonNegative(),
});

const powerSchema = z.strictObject({
  idleW: nonNegative(),
  computeW: nonNegative(),
  storageW: nonNegative(),
  radioTxW: nonNegative(),
  radioRxW: nonNegative(),
});

const availabilitySchema = z.strictObject({
  /** Chance that a selected client drops out of a federated round, in [0, 1). */
  dropoutRate: z.number().finite().min(0).lt(1),
});

const NUMBER_FIELD_SET: ReadonlySet<string> = new Set(PROFILE_NUMBER_FIELDS);

/** The schema of a profile JSON file (input shape). */
export const deviceProfileFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be kebab-case: lower-case letters, digits and dashes'),
    description: z.string().min(1),
    compute: computeSchema,
    memory: memorySchema,
    storage: storageSchema,
    network: networkSchema,
    power: powerSchema,
    availability: availabilitySchema,
    /** Per number (dotted path, e.g. `"power.idleW"`), where it comes from. */
    sources: z.record(z.string(), z.string().min(1)),
  })
  .superRefine((p, ctx) => {
    for (const key of Object.keys(p.sources)) {
      if (!NUMBER_FIELD_SET.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sources', key],
          message: `cites an unknown field; known fields: ${PROFILE_NUMBER_FIELDS.join(', ')}`,
        });
      }
    }
    const derived = cpuShareFor(p.compute.speedFactor);
    if (p.compute.cpuShare !== undefined && Math.abs(p.compute.cpuShare - derived) > 0.005) {
      ctx.addIssue({
        code: 'custom',
        path: ['compute', 'cpuShare'],
        message: `must be derived from compute.speedFactor: min(1, max(${MIN_CPU_SHARE}, speedFactor)) = ${derived}; omit it to have it derived`,
      });
    }
  })
  .transform((p) => {
    const { $schema: _ignored, ...rest } = p;
    return {
      ...rest,
      compute: {
        speedFactor: p.compute.speedFactor,
        cpuShare: p.compute.cpuShare ?? cpuShareFor(p.compute.speedFactor),
        gflops: p.compute.gflops ?? gflopsFor(p.compute.speedFactor),
      },
    };
  });

type DeepReadonly<T> = { readonly [K in keyof T]: T[K] extends object ? DeepReadonly<T[K]> : T[K] };

/** A validated, frozen device profile (`cpuShare` and `gflops` always filled in). */
export type DeviceProfile = DeepReadonly<z.output<typeof deviceProfileFileSchema>>;
export type DeviceProfileInput = z.input<typeof deviceProfileFileSchema>;
export type PowerModel = DeviceProfile['power'];

/** Numbers of a profile that lack a citation in `sources` (derived fields excepted). */
export function missingSources(profile: DeviceProfile): ProfileNumberField[] {
  return PROFILE_NUMBER_FIELDS.filter((f) => !DERIVED_FIELDS.has(f) && !(f in profile.sources));
}

/** Reads a number out of a profile by its dotted path. */
export function profileNumber(profile: DeviceProfile, field: ProfileNumberField): number {
  const [group, key] = field.split('.') as [string, string];
  const section = (profile as unknown as Record<string, Record<string, number>>)[group];
  const value = section?.[key];
  if (typeof value !== 'number') throw new TypeError(`profile ${profile.name} has no number at ${field}`);
  return value;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
