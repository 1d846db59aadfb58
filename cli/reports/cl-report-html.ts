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
  const e = r.energy;
  const deviceCards = [
    card('device profile', r.profile),
    card('counted work', `${(r.deviceTime.flops / 1e9).toFixed(1)} GFLOP`),
    card('device compute', `${r.deviceTime.gflops} GFLOP/s`),
    card('device seconds', `${r.deviceSeconds.toFixed(1)} s`),
    card('host seconds (diagnostic)', `${r.hostSeconds.toFixed(1)} s`),
    card(`energy total (${e.source})`, `${e.total.toFixed(1)} J`),
    card('compute / idle', `${e.compute.toFixed(1)} / ${e.idle.toFixed(1)} J`),
    card('storage / radio', `${e.storage.toFixed(2)} / ${e.radio.toFixed(2)} J`),
    card('cost-effectiveness', `${(r.costEffectiveness * 1000).toFixed(3)} acc/kJ`),
    ...(r.miro === null ? [] : [
      card('profiling energy', `${r.profiling.joules.toFixed(1)} J (${(r.profiling.share * 100).toFixed(1)}%)`),
      card('profiling device time', `${r.profiling.seconds.toFixed(1)} s`),
    ]),
  ].join('');
  const sourceNote = `<p class="note">Device seconds: ${escapeHtml(r.deviceTime.source)}. Energy per component from the profile's power model`
    + ` (${escapeHtml(r.deviceProfile.name)}: idle ${r.deviceProfile.power.idleW} W + compute ${r.deviceProfile.power.computeW} W + storage ${r.deviceProfile.power.storageW} W);`
    + ` sensor: ${e.measured === null ? 'none on this host' : `${escapeHtml(e.measured.source)} measured ${e.measured.joules.toFixed(1)} J on this host`}.`
    + ' Metric evaluation (the accuracy matrix) is not device work and is not counted; Miro\'s trials and their evaluation are.</p>';
  const miro = r.miro;
  const miroCadence = (m: NonNullable<typeof miro>): string => {
    const kept = m.configPerTask.filter((c) => !c.profiled).map((c) => c.task + 1);
    const budget = `profiling budget ${(m.options.profilingBudget * 100).toFixed(0)}% of the run's energy, trials of at least ${m.options.minTrialSteps} steps`;
    return kept.length === 0 ? `Profiled before every task (${budget}).`
      : `Profiled before tasks ${m.boundaries.map((b) => b.task + 1).join(', ')}; tasks ${kept.join(', ')} kept the configuration before them (${budget}).`;
  };
  const miroSkipped = (b: NonNullable<typeof miro>['boundaries'][number]): string => b.skipped.length === 0 ? ''
    : `; not trialed (moot: no accuracy it could reach changes the choice, ${b.skipped[0]!.stepsSaved} steps saved): ${escapeHtml(b.skipped.map((x) => x.key).join(', '))}`;
  const miroSection = miro === null ? '' : `<section id="miro"><h2>Miro: candidates per task boundary (accuracy vs estimated energy of the next task)</h2>
<p class="note">${escapeHtml(`${miro.options.navigator} navigator over ${miro.spaceSize} candidates, data ratio ${miro.options.dataRatio}, cutline ${miro.options.cutline}: keep the top ${miro.options.cutline * 100}% by held-out accuracy (at least 2, and any within the held-out set's noise of the last kept), then the highest accuracy per joule.`)}
Filled circles are above the cutline; the star is the choice.</p>
<p class="note">${escapeHtml(miroCadence(miro))}</p>
<div class="grid2">${miro.boundaries.map((b) => `<div><h3>before task ${b.task + 1}: ${escapeHtml(b.chosen.key)}</h3><canvas id="miro-scatter-${b.task}" class="miro-scatter"></canvas>
<p class="note">${b.candidates.length} candidates scored in ${b.candidates.filter((c) => c.trialJoules > 0).length} trial segments, ${b.joules.toFixed(2)} J, ${b.deviceSeconds.toFixed(1)} device s${miroSkipped(b)}</p></div>`).join('')}</div>
<table><tr><th>before task</th><th>candidate</th><th>accuracy</th><th>est. J</th><th>acc/kJ</th><th>trial J (0: scored on another's trial)</th><th></th></tr>
${miro.boundaries.flatMap((b) => [
    ...b.candidates.map((c) => `<tr><td>${b.task + 1}</td><td>${escapeHtml(c.key)}</td><td>${c.accuracy.toFixed(3)}</td><td>${c.joules.toFixed(1)}</td><td>${(c.utility * 1000).toFixed(2)}</td><td>${c.trialJoules.toFixed(2)}</td><td>${c.chosen ? 'chosen' : c.kept ? 'kept' : ''}</td></tr>`),
    ...b.skipped.map((c) => `<tr style="color:#777"><td>${b.task + 1}</td><td>${escapeHtml(c.key)}</td><td>not trialed</td><td>${c.joules.toFixed(1)}</td><td></td><td>0 (${c.stepsSaved} steps saved)</td><td>${c.chosen ? 'chosen (moot: every score led to it)' : 'moot'}</td></tr>`),
  ]).join('')}</table></section>`;
  const body = `<div class="cards">${cards}</div>
<section><h2>Device time and energy</h2><div class="cards">${deviceCards}</div>${sourceNote}</section>
${miroSection}
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
  options: { animation: false, scales: { y: { min: 0, max: 1 } } } });
for (const b of (REPORT.miro ? REPORT.miro.boundaries : [])) {
  const pt = (c) => ({ x: c.joules, y: c.accuracy, key: c.key });
  chart('miro-scatter-' + b.task, { type: 'scatter', data: { datasets: [
    { label: 'above cutline', data: b.candidates.filter((c) => c.kept && !c.chosen).map(pt), backgroundColor: '#2f6fde', pointRadius: 5 },
    { label: 'below cutline', data: b.candidates.filter((c) => !c.kept).map(pt), backgroundColor: 'rgba(120,130,145,0.55)', pointRadius: 5 },
    { label: 'chosen', data: b.candidates.filter((c) => c.chosen).map(pt), backgroundColor: '#e0592a', pointStyle: 'star', pointRadius: 12, borderColor: '#e0592a', borderWidth: 2 },
  ] }, options: { animation: false, plugins: { tooltip: { callbacks: { label: (ctx) => ctx.raw.key + ': acc ' + ctx.raw.y.toFixed(3) + ', ' + ctx.raw.x.toFixed(1) + ' J' } } },
    scales: { x: { title: { display: true, text: 'estimated energy of the next task (J)' } }, y: { title: { display: true, text: 'held-out accuracy (seen tasks)' } } } } });
}`;
  return htmlPage({
    title: `strata cl: ${c.method} on ${c.dataset}`,
    subtitle: `${r.profile}${r.miro === null ? '' : ', Miro profiler'}, ${c.model}, ${c.tasks} tasks, ${c.epochs} epoch(s)/task, batch ${c.batch} + replay ${c.replay}, memory ${c.memory}, storage ${c.storage}, swap ${c.swap} (${c.policy}, ratio ${c.swapRatio}), seed ${c.seed}, backend ${r.backend}`,
    body, data: r, script,
  });
}
