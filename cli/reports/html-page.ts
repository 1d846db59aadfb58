import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

let chartJs: string | undefined;

/** Chart.js's UMD build, inlined so reports are single self-contained files. */
export function chartJsSource(): string {
  if (chartJs === undefined) {
    const require = createRequire(import.meta.url);
    // The package's exports map hides dist/; its main entry sits beside the UMD build.
    chartJs = readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe to embed in a <script> element. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#b8c0cc}
main{padding:20px 28px;max-width:1200px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;margin-bottom:20px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:22px;font-weight:600}.card .k{color:#5b6472;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
section{background:#fff;border-radius:8px;padding:16px;margin-bottom:20px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
section h2{margin:0 0 10px;font-size:16px}.grid2{display:grid;grid-template-columns:1fr 1fr;gap:20px}
table{border-collapse:collapse}td,th{padding:6px 10px;text-align:center;font-variant-numeric:tabular-nums}
th{color:#5b6472;font-weight:500}.heat td{color:#fff;font-weight:600;min-width:56px}
pre{background:#f0f2f5;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
.note{color:#5b6472;font-size:12px}
@media (max-width:800px){.grid2{grid-template-columns:1fr}}`;

export function htmlPage(options: { title: string; subtitle: string; body: string; data: unknown; script: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(options.title)}</title><style>${STYLE}</style>
<script>${chartJsSource()}</script></head>
<body><header><h1>${escapeHtml(options.title)}</h1><p>${escapeHtml(options.subtitle)}</p></header>
<main>${options.body}</main>
<script id="report-data" type="application/json">${embedJson(options.data)}</script>
<script>
const REPORT = JSON.parse(document.getElementById('report-data').textContent);
window.STRATA_CHARTS = [];
function chart(id, config) { const c = new Chart(document.getElementById(id), config); window.STRATA_CHARTS.push(c); return c; }
${options.script}
</script></body></html>
`;
}

export function card(label: string, value: string): string {
  return `<div class="card"><div class="k">${escapeHtml(label)}</div><div class="v">${escapeHtml(value)}</div></div>`;
}
