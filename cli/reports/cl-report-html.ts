import type { ClReport } from '../../client-runtime/cl-experiment.js';
import { card, escapeHtml, htmlPage } from './html-page.js';

/** Colour of an accuracy in [0, 1]: red (0) through amber to green (1). */
function heatColour(a: number): string {
  const hue = Math.round(Math.max(0, Math.min(1, a)) * 120);
  return `hsl(${hue},62%,${38 + Math.round(a * 6)}%)`;
}

function heatmap(r: ClReport): string {
  const T = r.accuracyMatrix.length;
  const head = r.taskClasses.map((c, j) => `<th>task ${j + 1}<br><span class="note">classes ${c.join(',')}</span></th>`).join('');
  const rows = r.accuracyMatrix.map((row, i) => `<tr><th>after task ${i + 1}</th>${row.map((a, j) => `<td style="background:${j > i ? '#c9ced6' : heatColour(a)}" title="R[${i}][${j}] = ${a.toFixed(4)}">${(a * 100).toFixed(1)}</td>`).join('')}</tr>`).join('');
  return `<table class="heat" id="accuracy-matrix" data-tasks="${T}"><tr><th></th>${head}</tr>${rows}</table>
<p class="note">R[i][j] = test accuracy (%) on task j after training task i; grey cells are tasks not seen yet.</p>`;
}

export function clReportHtml(r: ClReport): string {
  const c = r.config;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const swap = r.swap;
  const cards = [
    card('final average accuracy', pct(r.finalAverageAccuracy)),
    card('average incremental acc.', pct(r.averageIncrementalAccuracy)),
    card('forgetting', pct(r.forgetting)),
    card('backward transfer', pct(r.backwardTransfer)),
    card('training time', `${r.trainSeconds.toFixed(1)} s`),
    card('samples / s', r.samplesPerSecond.toFixed(0)),
    card('EM bytes', `${(r.emBytes / 1024).toFixed(1)} KiB`),
    card('store bytes', `${(r.storeBytes / 1024 / 1024).toFixed(2)} MiB`),
    card('swaps applied', swap === null ? 'off' : String(swap.applied)),
  ].join('');
  const body = `<div class="cards">${cards}</div>
<section><h2>Accuracy matrix</h2>${heatmap(r)}</section>
<div class="grid2">
<section><h2>Accuracy on all seen classes after each task</h2><canvas id="chart-seen"></canvas></section>
<section><h2>Accuracy of each task over time</h2><canvas id="chart-tasks"></canvas></section>
</div>
<section><h2>Configuration</h2><pre>${escapeHtml(JSON.stringify({ ...c, backend: r.backend }, null, 2))}</pre>
${swap === null ? '' : `<h2>Swapping</h2><pre>${escapeHtml(JSON.stringify(swap, null, 2))}</pre>`}</section>`;
  const script = `
const labels = REPORT.accuracyMatrix.map((_, i) => 'after task ' + (i + 1));
chart('chart-seen', { type: 'line', data: { labels, datasets: [{ label: 'accuracy on seen classes', data: REPORT.accuracyAfterTask, borderColor: '#2f6fde', backgroundColor: '#2f6fde', tension: 0.2 }] },
  options: { animation: false, scales: { y: { min: 0, max: 1 } } } });
const palette = ['#2f6fde', '#e0592a', '#2a9d5c', '#9b51e0', '#d4a017', '#17a2b8', '#c2185b', '#5d4037', '#607d8b', '#8bc34a'];
chart('chart-tasks', { type: 'line', data: { labels, datasets: REPORT.taskClasses.map((cls, j) => ({ label: 'task ' + (j + 1) + ' (' + cls.join(',') + ')',
  data: REPORT.accuracyMatrix.map((row, i) => i >= j ? row[j] : null), borderColor: palette[j % palette.length], backgroundColor: palette[j % palette.length], spanGaps: false })) },
  options: { animation: false, scales: { y: { min: 0, max: 1 } } } });`;
  return htmlPage({
    title: `strata cl: ${c.method} on ${c.dataset}`,
    subtitle: `${c.model}, ${c.tasks} tasks, ${c.epochs} epoch(s)/task, batch ${c.batch} + replay ${c.replay}, memory ${c.memory}, storage ${c.storage}, swap ${c.swap} (${c.policy}, ratio ${c.swapRatio}), seed ${c.seed}, backend ${r.backend}`,
    body, data: r, script,
  });
}
