import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

let chartJs: Buffer | undefined;

/** Chart.js's UMD build (the charting library of the HTML reports), served at `/assets/chart.umd.min.js`. */
export function chartJsBundle(): Buffer {
  if (chartJs === undefined) {
    const require = createRequire(import.meta.url);
    // The package's exports map hides dist/; its main entry sits beside the UMD build.
    chartJs = readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'));
  }
  return chartJs;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px;display:flex;align-items:baseline;gap:16px;flex-wrap:wrap}
header h1{margin:0;font-size:19px}header span{color:#b8c0cc}#live{margin-left:auto;font-size:12px}
#live.on::before{content:'';display:inline-block;width:8px;height:8px;border-radius:50%;background:#3ccf7a;margin-right:6px}
#live.off::before{content:'';display:inline-block;width:8px;height:8px;border-radius:50%;background:#e05260;margin-right:6px}
main{padding:16px 24px;max-width:1400px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:10px;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums}.card .k{color:#5b6472;font-size:11px;text-transform:uppercase;letter-spacing:.04em}
.card .s{color:#5b6472;font-size:12px}
section{background:#fff;border-radius:8px;padding:14px;margin-bottom:16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
section h2{margin:0 0 8px;font-size:15px}.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.chart{position:relative;height:240px}
table{border-collapse:collapse;width:100%}#settings{width:auto}td,th{padding:5px 8px;text-align:left;font-variant-numeric:tabular-nums;border-bottom:1px solid #eef0f3;font-size:13px}
th{color:#5b6472;font-weight:500}.num{text-align:right}
.st{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px}
.st.training{background:#e4efff;color:#1f5fbf}.st.idle{background:#e7f7ee;color:#1d7a46}.st.offline{background:#f1f1f1;color:#777}
.codes{color:#b0303c;font-size:12px}.note{color:#5b6472;font-size:12px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
const fmt = (v, d = 4) => v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(d);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const ago = (t) => { const s = Math.max(0, (Date.now() - t) / 1000); return s < 60 ? s.toFixed(0) + ' s ago' : s < 3600 ? (s / 60).toFixed(0) + ' min ago' : (s / 3600).toFixed(1) + ' h ago'; };
const rounds = new Map();
let status = null;
function lineChart(id, label, color, min, max) {
  return new Chart($(id), {
    type: 'line',
    data: { labels: [], datasets: [{ label, data: [], borderColor: color, backgroundColor: color, pointRadius: 2, tension: 0.15 }] },
    options: { animation: false, maintainAspectRatio: false, scales: { x: { title: { display: true, text: 'round' } }, y: { min, max } }, plugins: { legend: { display: false } } },
  });
}
const charts = { accuracy: lineChart('chart-accuracy', 'accuracy', '#2f6fde', 0, 1), loss: lineChart('chart-loss', 'loss', '#d9534f') };
function drawCharts() {
  const rows = [...rounds.values()].sort((a, b) => a.roundId - b.roundId);
  for (const [key, c] of Object.entries(charts)) {
    const pts = rows.filter((r) => r[key] !== null && r[key] !== undefined);
    c.data.labels = pts.map((r) => r.roundId);
    c.data.datasets[0].data = pts.map((r) => r[key]);
    c.update();
    c.canvas.dataset.points = String(pts.length);
  }
}
function addRound(r) { rounds.set(r.roundId, { roundId: r.roundId, accuracy: r.accuracy, loss: r.loss, seconds: r.seconds, applied: r.applied }); }
function renderStatus() {
  const s = status; if (!s) return;
  $('state').textContent = s.state;
  $('round-id').textContent = s.roundId === null ? '—' : String(s.roundId);
  $('round-sub').textContent = s.roundId === null ? s.engine : s.acceptedThisRound + ' / ' + s.perRound + ' updates, ' + s.assigned + ' training';
  $('deadline').textContent = s.roundDeadlineAt === null ? '—' : Math.max(0, (s.roundDeadlineAt - Date.now()) / 1000).toFixed(0) + ' s';
  $('model-version').textContent = String(s.modelVersion);
  $('rounds-target').textContent = s.targetRounds === null ? 'of ∞ rounds' : 'of ' + s.targetRounds + ' rounds';
  $('clients').textContent = s.connectedClients + ' / ' + s.knownClients;
  $('accuracy').textContent = fmt(s.lastAccuracy);
  $('loss').textContent = 'loss ' + fmt(s.lastLoss);
  const rejected = Object.values(s.updatesRejected).reduce((a, b) => a + b, 0);
  $('updates').textContent = s.updatesAccepted + ' / ' + rejected;
  $('throughput').textContent = fmt(s.aggregationMBps, 0) + ' MB/s';
  $('memory').textContent = (s.rssBytes / 2 ** 20).toFixed(0) + ' MiB';
  $('uptime').textContent = 'up ' + ago(Date.now() - s.uptimeSeconds * 1000).replace(' ago', '');
  $('strategy').textContent = s.strategy;
  $('settings').innerHTML = Object.entries(s.strategySettings).map(([k, v]) => '<tr><th>' + esc(k) + '</th><td>' + esc(JSON.stringify(v)) + '</td></tr>').join('') || '<tr><td class="note">no settings</td></tr>';
  $('client-rows').innerHTML = s.clients.map((c) => {
    const codes = Object.entries(c.rejectedCodes || {}).map(([k, n]) => esc(k.replace('STRATA_ERR_', '')) + ' ×' + n).join(', ');
    const cfg = c.config ? 'EM ' + c.config.memory + ', stream ' + fmt(c.config.streamBuffer, 2) + ', swap ' + fmt(c.config.swapRatio, 2) : '—';
    return '<tr><td>' + esc(c.clientId) + '</td><td>' + esc(c.profile) + '</td><td><span class="st ' + c.state + '">' + c.state + '</span></td><td>' + ago(c.lastSeen) +
      '</td><td class="num">' + c.roundsDone + '</td><td class="num">' + c.accepted + '</td><td class="num">' + c.rejected + (codes ? ' <span class="codes">' + codes + '</span>' : '') +
      '</td><td class="num">' + c.dropped + '</td><td class="num">' + fmt(c.deviceSeconds, 1) + '</td><td class="num">' + fmt(c.joules, 1) + '</td><td>' + cfg + (c.task === null ? '' : ' (task ' + c.task + ')') + '</td></tr>';
  }).join('');
  $('client-count').textContent = s.clients.length + ' clients';
}
function connect() {
  const es = new EventSource('events');
  es.addEventListener('history', (e) => { rounds.clear(); for (const r of JSON.parse(e.data)) addRound(r); drawCharts(); });
  es.addEventListener('round', (e) => {
    const r = JSON.parse(e.data);
    addRound(r);
    drawCharts();
    // The cards follow at once (the next status push may be up to half a second away).
    if (status && r.modelVersion > status.modelVersion) {
      status.modelVersion = r.modelVersion;
      if (r.accuracy !== null) { status.lastAccuracy = r.accuracy; status.lastLoss = r.loss; }
      renderStatus();
    }
  });
  es.addEventListener('status', (e) => { status = JSON.parse(e.data); renderStatus(); document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1); });
  es.onopen = () => { $('live').className = 'on'; $('live').textContent = 'live'; };
  es.onerror = () => { $('live').className = 'off'; $('live').textContent = 'reconnecting'; };
}
setInterval(renderStatus, 1000);
connect();
`;

/** The live dashboard at `/`: one page, its data from `/events` (server-sent events). */
export function dashboardHtml(): string {
  const card = (id: string, label: string, sub = ''): string =>
    `<div class="card"><div class="k">${label}</div><div class="v" id="${id}">—</div>${sub ? `<div class="s" id="${sub}"></div>` : ''}</div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Strata coordinator</title><style>${STYLE}</style><script src="assets/chart.umd.min.js"></script></head>
<body><header><h1>Strata coordinator</h1><span id="state">connecting</span><span id="uptime"></span><span id="live" class="off">connecting</span></header>
<main>
<div class="cards">
${card('round-id', 'round in progress', 'round-sub')}${card('deadline', 'deadline in')}${card('model-version', 'model version', 'rounds-target')}
${card('accuracy', 'accuracy', 'loss')}${card('clients', 'clients connected / known')}${card('updates', 'updates accepted / rejected')}
${card('throughput', 'aggregation')}${card('memory', 'resident memory')}
</div>
<div class="grid2">
<section><h2>Accuracy per round</h2><div class="chart"><canvas id="chart-accuracy" data-points="0"></canvas></div></section>
<section><h2>Loss per round</h2><div class="chart"><canvas id="chart-loss" data-points="0"></canvas></div></section>
</div>
<section><h2>Strategy: <span id="strategy">—</span></h2><table id="settings"></table></section>
<section><h2>Clients <span class="note" id="client-count"></span></h2>
<table><thead><tr><th>client</th><th>profile</th><th>state</th><th>last seen</th><th class="num">rounds</th><th class="num">accepted</th><th class="num">rejected</th><th class="num">dropped</th><th class="num">device s</th><th class="num">joules</th><th>memory configuration (Miro)</th></tr></thead>
<tbody id="client-rows"></tbody></table></section>
</main>
<script>${SCRIPT}</script></body></html>
`;
}
