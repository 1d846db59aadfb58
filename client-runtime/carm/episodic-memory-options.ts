import { StrataError } from '../../common/strata-error.js';

export type MemorySampling = 'reservoir' | 'class-balanced';
export type MemoryFeatureType = 'uint8' | 'float32';

export interface EpisodicMemoryOptions {
  /** Samples the EM holds (integer >= 0). */
  capacity: number;
  /** Features per sample (integer > 0). */
  featureSize: number;
  featureType: MemoryFeatureType;
  /** Labels are 0..numClasses-1 (at most 256: labels are held as bytes). */
  numClasses: number;
  /** Logits per sample; 0 (default) = no logits (DER++ uses numClasses). */
  logitsSize?: number;
  /** How `observe` fills the EM. Default 'class-balanced'. */
  sampling?: MemorySampling;
  /** Seed of the EM's own sampling decisions. Default 0. */
  seed?: number;
}

export interface CompiledEpisodicMemoryOptions {
  readonly capacity: number;
  readonly featureSize: number;
  readonly featureType: MemoryFeatureType;
  readonly numClasses: number;
  readonly logitsSize: number;
  readonly sampling: MemorySampling;
  readonly seed: number;
}


function badOption(option: string, why: string, value: unknown): StrataError {
  return new StrataError('STRATA_ERR_BAD_OPTION', `episodic memory option '${option}' ${why} (got ${JSON.stringify(value) ?? String(value)})`, { option, value });
}

export function intOption(option: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw badOption(option, `must be an integer in [${min}, ${max}]`, value);
  }
  return value;
}

/** Applies defaults and validates; bad options fail here, naming the option. */
export function compileEpisodicMemoryOptions(options: EpisodicMemoryOptions): CompiledEpisodicMemoryOptions {
  const featureType = options.featureType;
  if (featureType !== 'uint8' && featureType !== 'float32') throw badOption('featureType', "must be 'uint8' or 'float32'", featureType);
  const sampling = options.sampling ?? 'class-balanced';
  if (sampling !== 'reservoir' && sampling !== 'class-balanced') throw badOption('sampling', "must be 'reservoir' or 'class-balanced'", sampling);
  return Object.freeze({
    capacity: intOption('capacity', options.capacity, 0),
    featureSize: intOption('featureSize', options.featureSize, 1),
    featureType,
    numClasses: intOption('numClasses', options.numClasses, 1, 256),
    logitsSize: intOption('logitsSize', options.logitsSize ?? 0, 0),
    sampling,
    seed: intOption('seed', options.seed ?? 0, Number.MIN_SAFE_INTEGER),
  });
}
