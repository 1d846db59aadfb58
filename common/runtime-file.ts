import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * Path of a sibling module that must run as its own thread or process
 * (swap worker, simulation worker). From the compiled tree that is the `.js`
 * next to the caller; when the caller runs from TypeScript source (vitest),
 * it is the compiled copy under `dist/`, which `npm test` builds first.
 */
export function runtimeFile(callerUrl: string, name: string): string {
  const callerPath = fileURLToPath(callerUrl);
  const dir = path.dirname(callerPath);
  const beside = path.join(dir, `${name}.js`);
  if (callerPath.endsWith('.js') && existsSync(beside)) return beside;
  const root = findPackageRoot(dir);
  const rel = path.relative(root, dir);
  return path.join(root, 'dist', rel, `${name}.js`);
}

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return start;
    dir = up;
  }
}
