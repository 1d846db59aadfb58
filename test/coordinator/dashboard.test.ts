import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentConnection, type TrainFn } from '../../client-runtime/agent-connection.js';
import { FedAvg, type Evaluation } from '../../coordinator/index.js';
import { silentLogger, startCoordinator, type Harness } from './helpers.js';

const CHROMIUM = process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const TOKEN = 'dash-board-token-1';
/** Where the test leaves its screenshot (a person looks at it: the note of the change describes it). */
const SCREENSHOT = path.join(import.meta.dirname, '../../test-artifacts/dashboard.png');

/** FedAvg whose evaluation is a function of the model (its mean weight): accuracy climbs as rounds move it. */
class EvaluatedFedAvg extends FedAvg {
  override readonly name = 'fedavg';
  evaluate(weights: Float32Array): Evaluation {
    let sum = 0;
    for (const w of weights) sum += w;
    const mean = sum / weights.length;
    return { accuracy: Math.min(0.99, 0.3 + mean), loss: Math.max(0.05, 2 - 3 * mean) };
  }
}

let harness: Harness | undefined;
let browser: Browser | undefined;
const agents: AgentConnection[] = [];

afterAll(async () => {
  await browser?.close();
  await Promise.all(agents.map((a) => a.stop()));
  await harness?.stop();
});

describe('the live dashboard', () => {
  it.skipIf(!haveChromium)(`loads with its token, refuses without it, and follows the rounds live${haveChromium ? '' : ` (skipped: ${CHROMIUM} not found)`}`, async () => {
    harness = await startCoordinator({
      perRound: 2, minClients: 2, overCommit: 1, rounds: 12, roundDeadlineMs: 30_000, dashboardToken: TOKEN,
    }, 64, undefined, ':memory:', new EvaluatedFedAvg());
    const base = harness.coordinator.httpUrl;

    // Without the token: refused, with the code; /status too. /metrics and /healthz stay open.
    for (const p of ['/', '/status', '/events']) {
      const r = await fetch(`${base}${p}`);
      expect(r.status).toBe(401);
      if (p !== '/') expect(await r.json()).toMatchObject({ code: 'STRATA_ERR_AUTH' });
      expect((await fetch(`${base}${p}?token=wrong-token-xx`)).status).toBe(401);
    }
    expect((await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const refused = await page.goto(`${base}/`);
    expect(refused?.status()).toBe(401);
    expect(await page.getAttribute('body', 'data-code')).toBe('STRATA_ERR_AUTH');

    const loaded = await page.goto(`${base}/?token=${TOKEN}`);
    expect(loaded?.status()).toBe(200);
    // The page's live stream is up before any agent connects: round and chart start empty.
    // (Page-side code as strings: this project type-checks against Node's lib, not the DOM's.)
    await page.waitForFunction('Number(document.body.dataset.updates || 0) >= 1');
    expect(await page.textContent('#round-id')).toBe('—');
    expect(await page.getAttribute('#chart-accuracy', 'data-points')).toBe('0');

    // Agents join: rounds run (each agent takes ~150 ms a round), and the page follows them. They report
    // their task, memory configuration and joules; dash-c sends one non-finite update (rejected, by code).
    for (const [k, id] of ['dash-a', 'dash-b', 'dash-c'].entries()) {
      let sentBad = false;
      const train: TrainFn = async (a, global) => {
        await new Promise((r) => setTimeout(r, 150));
        const bad = id === 'dash-c' && !sentBad;
        sentBad ||= bad;
        return {
          delta: new Float32Array(global.length).fill(bad ? Number.NaN : 0.01),
          metrics: { numSamples: 10, loss: 0.5, accuracy: 0.5, deviceSeconds: 1.5 + k, hostSeconds: 0.15 },
          joules: { compute: 2 + k, storage: 0.5, radio: 0.25, idle: 0.25, total: 3 + k },
          device: { task: Math.min(4, Math.floor(a.roundId / 3)), config: { memory: 200 * (k + 1), streamBuffer: 1, swapRatio: 0.25 * (k + 1) } },
        };
      };
      const agent = new AgentConnection({ url: harness.url, agentId: id, token: 't', profile: ['raspberry-pi-4', 'jetson-nano', 'pixel-6'][k]!, train, logger: silentLogger });
      agent.start();
      agents.push(agent);
    }
    await page.waitForFunction(`Number(document.getElementById('model-version').textContent) >= 3`, undefined, { timeout: 30_000 });
    const early = Number(await page.getAttribute('#chart-accuracy', 'data-points'));
    const earlyRound = Number(await page.textContent('#model-version'));
    expect(early).toBeGreaterThanOrEqual(1);
    await page.waitForFunction(`Number(document.getElementById('chart-accuracy').dataset.points) >= ${early + 4}`, undefined, { timeout: 30_000 });
    expect(Number(await page.textContent('#model-version'))).toBeGreaterThan(earlyRound);
    // The chart's own data, as Chart.js holds it.
    const accuracies = await page.evaluate<number[]>(`Chart.getChart('chart-accuracy').data.datasets[0].data`);
    expect(accuracies.length).toBeGreaterThanOrEqual(early + 4);
    expect(accuracies.at(-1)!).toBeGreaterThan(accuracies[0]!);
    // Per-client rows: every agent, its profile and rounds. Selection is 2 of 3 a round, so wait until
    // dash-c has been picked once (its rejection shows) and dash-b has reported a configuration.
    await page.waitForFunction(
      `(() => { const r = [...document.querySelectorAll('#client-rows tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent || ''));`
        + ` return r.length === 3 && r[2][6].includes('NON_FINITE') && r[1][10].includes('EM 400'); })()`,
      undefined, { timeout: 30_000 },
    );
    const rows = await page.$$eval('#client-rows tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows.map((r) => r[0])).toEqual(['dash-a', 'dash-b', 'dash-c']);
    expect(rows.map((r) => r[1])).toEqual(['raspberry-pi-4', 'jetson-nano', 'pixel-6']);
    expect(rows[2]![6]).toContain('NON_FINITE');
    expect(rows[1]![10]).toContain('EM 400');
    expect(await page.textContent('#strategy')).toBe('fedavg');

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }, 90_000);
});
