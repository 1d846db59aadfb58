import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../common/strata-error.js';

/** `--out DIR`, default `runs/<command>-<timestamp>`; created if missing. */
export function prepareRunDir(command: string, out: string | undefined): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.resolve(out ?? path.join('runs', `${command}-${stamp}`));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `--out: cannot create directory ${dir} (${(err as Error).message})`, { flag: '--out', value: out });
  }
  return dir;
}

export function writeReport(dir: string, report: object): string {
  const file = path.join(dir, 'report.json');
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

/** `--json`: the report as the last line of stdout. */
export function printJsonReport(report: object): void {
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
