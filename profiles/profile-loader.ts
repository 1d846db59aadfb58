import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ZodError } from 'zod';
import { StrataError } from '../common/strata-error.js';
import { deepFreeze, deviceProfileFileSchema, type DeviceProfile } from './device-profile.js';

/** Where shipped profiles live, relative to the package root. */
const DEVICES_REL = path.join('profiles', 'devices');

export interface ProfileLoaderOptions {
  /** Folder of shipped profiles `<name>.json`. Default: `profilesDir()`. */
  dir?: string;
}

/**
 * The folder of shipped profile JSON files: `<package root>/profiles/devices`.
 * Works from the TypeScript source (`profiles/`) and from the compiled tree
 * (`dist/profiles/`), because the JSON files stay in the source folder: walk
 * up from this module to the first folder with a `package.json` that also
 * holds `profiles/devices`.
 */
export function profilesDir(): string {
  const start = path.dirname(fileURLToPath(import.meta.url));
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, DEVICES_REL))) {
      return path.join(dir, DEVICES_REL);
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // Not found (unusual install): the folder beside the source module is the best guess.
  return path.join(start, 'devices');
}

/** Names of the shipped profiles, sorted. */
export function profileNames(options: ProfileLoaderOptions = {}): string[] {
  const dir = options.dir ?? profilesDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Every shipped profile, validated, `reference-host` first then by name. */
export function listProfiles(options: ProfileLoaderOptions = {}): DeviceProfile[] {
  const names = profileNames(options);
  const ordered = [...names.filter((n) => n === 'reference-host'), ...names.filter((n) => n !== 'reference-host')];
  return ordered.map((n) => loadProfile(n, options));
}

function looksLikePath(nameOrPath: string): boolean {
  return nameOrPath.includes('/') || nameOrPath.includes('\\') || nameOrPath.endsWith('.json') || nameOrPath.startsWith('.');
}

/**
 * Loads a device profile by shipped name (`jetson-nano-5w`) or by a path to a
 * JSON file (anything with a slash, or ending in `.json`; relative to the
 * current directory). Validates it and returns a frozen `DeviceProfile`.
 *
 * @throws StrataError `STRATA_ERR_PROFILE_UNKNOWN` for an unknown name or a
 *   missing file (the message lists the known names), and
 *   `STRATA_ERR_PROFILE_INVALID` for bad JSON or a bad field (the message and
 *   `details.field` name the field).
 */
export function loadProfile(nameOrPath: string, options: ProfileLoaderOptions = {}): DeviceProfile {
  const dir = options.dir ?? profilesDir();
  if (looksLikePath(nameOrPath)) {
    const file = path.resolve(nameOrPath);
    if (!existsSync(file)) {
      throw unknown(`device profile file not found: ${file}`, { profile: nameOrPath, file }, dir);
    }
    return parseProfileFile(file);
  }
  const file = path.join(dir, `${nameOrPath}.json`);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(nameOrPath) || !existsSync(file)) {
    throw unknown(`unknown device profile "${nameOrPath}"`, { profile: nameOrPath }, dir);
  }
  const profile = parseProfileFile(file);
  if (profile.name !== nameOrPath) {
    throw new StrataError(
      'STRATA_ERR_PROFILE_INVALID',
      `device profile ${file}: field "name" is "${profile.name}" but the file is named "${nameOrPath}.json"`,
      { file, field: 'name' },
    );
  }
  return profile;
}

/** Parses and validates one profile JSON file. */
export function parseProfileFile(file: string): DeviceProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new StrataError('STRATA_ERR_PROFILE_INVALID', `device profile ${file}: not valid JSON (${(err as Error).message})`, {
      file,
      field: '(json)',
    }, { cause: err });
  }
  return parseProfile(raw, file);
}

/** Validates an already-parsed profile object; `origin` names it in errors. */
export function parseProfile(raw: unknown, origin = '(object)'): DeviceProfile {
  const result = deviceProfileFileSchema.safeParse(raw);
  if (!result.success) throw invalid(result.error, origin);
  return deepFreeze(result.data) as DeviceProfile;
}

function fieldOf(p: readonly PropertyKey[]): string {
  return p.length === 0 ? '(root)' : p.map((k) => String(k)).join('.');
}

function invalid(error: ZodError, origin: string): StrataError {
  const issues = error.issues.map((i) => {
    // Unknown keys are reported on the parent; name the key itself.
    const keys = i.code === 'unrecognized_keys' ? i.keys : [];
    const field = keys.length > 0 ? fieldOf([...i.path, keys[0]!]) : fieldOf(i.path);
    const message =
      i.code === 'unrecognized_keys'
        ? `unknown field (${keys.join(', ')})`
        : i.code === 'invalid_type' && i.message.endsWith('received undefined')
          ? 'required field is missing'
          : i.message;
    return { field, message };
  });
  const first = issues[0] ?? { field: '(root)', message: 'invalid' };
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1).map((i) => i.field).join(', ')})` : '';
  return new StrataError(
    'STRATA_ERR_PROFILE_INVALID',
    `device profile ${origin}: field "${first.field}": ${first.message}${more}`,
    { file: origin, field: first.field, issues },
  );
}

function unknown(message: string, details: Record<string, unknown>, dir: string): StrataError {
  const known = profileNames({ dir });
  return new StrataError(
    'STRATA_ERR_PROFILE_UNKNOWN',
    `${message}; known profiles: ${known.join(', ') || '(none found in ' + dir + ')'}, or give a path to a JSON file`,
    { ...details, known },
  );
}
