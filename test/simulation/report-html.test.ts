import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { simulateReportHtml } from '../../cli/reports/simulate-report-html.js';
import { simulate, smallConfig, tmpDir } from './helpers.js';

const CHROMIUM = process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const CHART_IDS = ['chart-accuracy-round', 'chart-accuracy-vtime', 'chart-round-time-profile', 'chart-energy-client', 'chart-utilisation'];

describe('report.html', () => {
  it.skipIf(!haveChromium)(`renders every chart in headless Chromium${haveChromium ? '' : ` (skipped: ${CHROMIUM} not found)`}`, async () => {
    const dir = tmpDir();
    const report = await simulate(smallConfig({ rounds: 2, budget: 'duty' }), dir);
    const file = path.join(dir, 'report.html');
    const html = simulateReportHtml(report);
    expect(html).not.toMatch(/<script[^>]+src=/); // self-contained
    writeFileSync(file, html);
    const { stdout } = await promisify(execFile)(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', `--user-data-dir=${tmpDir('strata-chromium-')}`, '--virtual-time-budget=5000', '--dump-dom', `file://${file}`,
    ], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    // The page's script stamps how many Chart.js charts it built and how many data sets each drew.
    expect(stdout).toMatch(new RegExp(`<body[^>]*data-charts="${CHART_IDS.length}"`));
    for (const id of CHART_IDS) expect(stdout).toMatch(new RegExp(`<canvas id="${id}"[^>]*data-rendered="[1-9]`));
  });
});
