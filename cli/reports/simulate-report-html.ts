import type { SimulationReport } from '../../simulation/simulation-report.js';
import { card, escapeHtml, htmlPage } from './html-page.js';

function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** The self-contained `report.html` of `strata simulate` (Chart.js inlined). */
export function simulateReportHtml(r: SimulationReport): string {
  const c = r.config;
  const participants = r.rounds.reduce((s, x) => s + x.participants.length, 0);
  const stragglers = r.rounds.reduce((s, x) => s + x.stragglers.length, 0);
  const dropouts = r.rounds.reduce((s, x) => s + x.dropouts.length, 0);
  const sched = r.scheduler;
  const cards = [
    card('final accuracy', pct(r.finalAccuracy)),
    card('rounds', String(r.rounds.length)),
    card('wall-clock time', `${r.wallSeconds.toFixed(1)} s`),
    card('virtual time', `${r.virtualSeconds.toFixed(1)} s`),
    card('budget enforcer', r.enforcer.kind),
    card('participants / stragglers / dropouts', `${participants} / ${stragglers} / ${dropouts}`),
    card('energy (model)', `${(r.totalEnergyJoules / 1000).toFixed(2)} kJ`),
    sched.mode === 'naive' ? card('client processes', String(sched.processes)) : card(sched.mode === 'redis' ? `utilisation of ${sched.workers} worker host(s)` : 'worker utilisation', pct(sched.meanUtilisation)),
    card('peak RSS (all processes)', `${(r.memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB`),
  ].join('');
  // Round-time distribution per profile: min, p25, median, p75, max of virtual client round times.
  const dist = r.profiles.map((p) => {
    const s = [...p.roundSeconds].sort((a, b) => a - b);
    return { profile: p.profile, n: s.length, min: s[0] ?? 0, p25: quantile(s, 0.25), median: quantile(s, 0.5), p75: quantile(s, 0.75), max: s[s.length - 1] ?? 0 };
  });
  const budgetRows = r.profiles.map((p) => `<tr><td>${escapeHtml(p.profile)}</td><td>${p.clients}</td><td>${p.jobs}</td><td>${p.budget.toFixed(3)}</td><td>${p.measuredShare === null ? '-' : p.measuredShare.toFixed(3)}</td><td>${p.measuredShare === null ? '-' : `${(((p.measuredShare - p.budget) / p.budget) * 100).toFixed(1)}%`}</td></tr>`).join('');
  const clRows = r.cl === undefined ? '' : `<section><h2>Federated continual learning: accuracy on the classes seen so far after each task</h2>
<table id="cl-tasks"><tr><th>task</th><th>classes</th><th>after round</th><th>accuracy (seen classes)</th><th>accuracy (all classes)</th></tr>
${r.cl.tasks.map((t) => `<tr><td>${t.task + 1}</td><td>${t.classes.join(',')}</td><td>${t.afterRound}</td><td>${pct(t.accuracySeen)}</td><td>${pct(t.accuracy)}</td></tr>`).join('')}</table></section>`;
  const staleRows = Object.entries(r.staleness.histogram).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v}</td></tr>`).join('');
  const v = r.validation;
  const validation = `<section><h2>Updates: staleness, validation, clipping</h2>
<table id="staleness"><tr><th>staleness (model versions)</th><th>updates</th></tr>${staleRows}</table>
<p class="note">Mean staleness ${r.staleness.mean.toFixed(2)}, max ${r.staleness.max}${r.strategy.name === 'fedbuff' ? ' (FedBuff weights an update by 1/sqrt(1 + staleness))' : ''}.
Clipping: ${v.clipNorm === null ? 'off' : `${v.clipped} updates scaled down to L2 norm ${v.clipNorm}`}. Norm bound: ${v.maxUpdateNorm === null ? 'none' : v.maxUpdateNorm}.
Refused by validation: ${escapeHtml(JSON.stringify(v.rejected))}.</p></section>`;
  const miro = r.miro === undefined ? '' : miroSection(r.miro);
  const body = `<div class="cards">${cards}</div>
<div class="grid2">
<section><h2>Accuracy vs round</h2><canvas id="chart-accuracy-round"></canvas></section>
<section><h2>Accuracy vs virtual time</h2><canvas id="chart-accuracy-vtime"></canvas></section>
<section><h2>Client round time per device profile (virtual seconds)</h2><canvas id="chart-round-time-profile"></canvas>
<p class="note">Bars span the 25th-75th percentile, whiskers (thin bars) min-max, the dot is the median, over every job of the profile.</p></section>
<section><h2>Energy per client (modelled joules, all rounds)</h2><canvas id="chart-energy-client"></canvas></section>
</div>
<section><h2>${sched.mode === 'scheduled' ? 'Worker utilisation over time (budget in use, cores)' : sched.mode === 'redis' ? 'Worker hosts over Redis: budget in use over time (cores)' : 'Naive mode: one process per client'}</h2><canvas id="chart-utilisation"></canvas>
<p class="note">${utilisationNote(sched)}</p></section>
${sched.mode === 'redis' ? hostsTable(sched) : ''}
${clRows}
${miro}
${validation}
<section><h2>Budgets: enforcer ${escapeHtml(r.enforcer.kind)}</h2>
<table id="budget-table"><tr><th>profile</th><th>clients</th><th>jobs</th><th>budget (cores)</th><th>measured CPU share</th><th>deviation</th></tr>${budgetRows}</table>
<p class="note">${escapeHtml(r.enforcer.notes.join('; '))}. Jobs by enforcer: ${escapeHtml(JSON.stringify(r.jobEnforcers))}. Measured share = the client thread's CPU time / its wall time while training.</p></section>
<section><h2>Configuration</h2><pre>${escapeHtml(JSON.stringify({ ...c, backend: r.backend }, null, 2))}</pre></section>`;
  const script = `
const palette = ['#2f6fde', '#e0592a', '#2a9d5c', '#9b51e0', '#d4a017', '#17a2b8', '#c2185b', '#5d4037', '#607d8b', '#8bc34a'];
const rounds = REPORT.rounds;
const acc = [{ label: 'test accuracy (all classes)', data: rounds.map((r) => r.accuracy), borderColor: palette[0], backgroundColor: palette[0] }];
if (REPORT.cl) acc.push({ label: 'accuracy on seen classes', data: rounds.map((r) => r.accuracySeen), borderColor: palette[1], backgroundColor: palette[1] });
chart('chart-accuracy-round', { type: 'line', data: { labels: rounds.map((r) => r.round), datasets: acc },
  options: { animation: false, scales: { x: { title: { display: true, text: 'round' } }, y: { min: 0, max: 1, title: { display: true, text: 'accuracy' } } } } });
chart('chart-accuracy-vtime', { type: 'line', data: { datasets: [{ label: 'test accuracy', data: rounds.map((r) => ({ x: r.virtualTime, y: r.accuracy })), borderColor: palette[2], backgroundColor: palette[2] }] },
  options: { animation: false, parsing: true, scales: { x: { type: 'linear', title: { display: true, text: 'virtual time (device seconds)' } }, y: { min: 0, max: 1 } } } });
const dist = ${JSON.stringify(dist)};
chart('chart-round-time-profile', { type: 'bar', data: { labels: dist.map((d) => d.profile + ' (' + d.n + ')'), datasets: [
  { label: 'min-max', data: dist.map((d) => [d.min, d.max]), backgroundColor: 'rgba(47,111,222,0.25)', barPercentage: 0.15, grouped: false },
  { label: 'p25-p75', data: dist.map((d) => [d.p25, d.p75]), backgroundColor: 'rgba(47,111,222,0.7)', barPercentage: 0.6, grouped: false },
  { type: 'line', label: 'median', data: dist.map((d) => d.median), borderColor: '#e0592a', backgroundColor: '#e0592a', showLine: false, pointRadius: 5 } ] },
  options: { animation: false, scales: { y: { title: { display: true, text: 'virtual seconds per round' } } } } });
const profNames = [...new Set(REPORT.clients.map((c) => c.profile))];
chart('chart-energy-client', { type: 'bar', data: { labels: REPORT.clients.map((c) => c.clientId), datasets: [{ label: 'joules',
  data: REPORT.clients.map((c) => c.energyJoules), backgroundColor: REPORT.clients.map((c) => palette[profNames.indexOf(c.profile) % palette.length]) }] },
  options: { animation: false, plugins: { legend: { display: false }, tooltip: { callbacks: { title: (items) => 'client ' + items[0].label + ' (' + REPORT.clients[items[0].dataIndex].profile + ')' } } },
    scales: { x: { title: { display: true, text: 'client (colour = profile)' } }, y: { title: { display: true, text: 'joules' } } } } });
if (REPORT.scheduler.mode !== 'naive') {
  const tl = REPORT.scheduler.timeline;
  const nw = REPORT.scheduler.workers;
  const ds = [];
  for (let w = 0; w < nw; w++) ds.push({ label: REPORT.scheduler.mode === 'redis' ? REPORT.scheduler.hosts[w].host : 'worker ' + w, data: tl.map((p) => ({ x: p.t, y: p.load[w] ?? 0 })), stepped: true, borderColor: palette[w % palette.length], backgroundColor: palette[w % palette.length], pointRadius: 0 });
  chart('chart-utilisation', { type: 'line', data: { datasets: ds }, options: { animation: false, scales: { x: { type: 'linear', title: { display: true, text: 'wall seconds' } }, y: { min: 0, title: { display: true, text: 'cores (budget in use)' } } } } });
} else {
  chart('chart-utilisation', { type: 'bar', data: { labels: rounds.map((r) => r.round), datasets: [{ label: 'wall seconds per round', data: rounds.map((r) => r.wallSeconds), backgroundColor: palette[3] }] },
    options: { animation: false } });
}
document.body.dataset.charts = String(window.STRATA_CHARTS.length);
for (const c of window.STRATA_CHARTS) c.canvas.dataset.rendered = String(c.data.datasets.length);`;
  return htmlPage({
    title: `strata simulate: ${c.clients} clients, ${r.strategy.name}, ${c.mode}`,
    subtitle: `${c.model} on ${c.dataset}${c.cl ? ` (continual: ${c.tasks} tasks, ${c.clMethod})` : ''}, ${c.partition}, ${c.perRound}/round x ${c.rounds} rounds, profiles ${c.profiles}, budgets ${r.enforcer.kind}, seed ${c.seed}, backend ${r.backend}`,
    body, data: r, script,
  });
}

function utilisationNote(sched: SimulationReport['scheduler']): string {
  if (sched.mode === 'scheduled') return `Each line is one worker process: the sum of the CPU budgets of the clients it is running (at most 1 core). ${sched.restarts} worker restart(s).`;
  if (sched.mode === 'redis') {
    return `Each line is one worker host: the sum of the CPU budgets of the clients it is running (at most its cores). Queue ${escapeHtml(sched.queue)} on ${escapeHtml(sched.redis)}; ${sched.jobsStarted} jobs queued, ${sched.reruns} re-run after their host died, ${sched.duplicates} duplicate result(s) dropped, ${sched.replayed} replayed from the checkpoint, ${sched.modelPublishes} model versions published.`;
  }
  return `${sched.processes} client processes, ${sched.loadSeconds.toFixed(1)} s spent loading tfjs, data and model.`;
}

/** Over Redis: what each worker host ran. */
function hostsTable(sched: Extract<SimulationReport['scheduler'], { mode: 'redis' }>): string {
  const rows = sched.hosts.map((h) => `<tr><td>${escapeHtml(h.host)}</td><td>${h.cores}</td><td>${h.jobs}</td><td>${h.clients}</td><td>${h.reruns}</td><td>${h.cpuSeconds.toFixed(1)}</td><td>${h.measuredShare === null ? '-' : h.measuredShare.toFixed(3)}</td><td>${pct(h.utilisation)}</td></tr>`).join('');
  return `<section><h2>Worker hosts</h2><table id="hosts"><tr><th>host</th><th>cores</th><th>jobs</th><th>clients</th><th>re-runs</th><th>CPU s</th><th>measured share</th><th>utilisation</th></tr>${rows}</table></section>`;
}

/** Miro in every client: the choices by device profile, and each profiled boundary with its candidates. */
function miroSection(m: NonNullable<SimulationReport['miro']>): string {
  const configs = [...new Set(Object.values(m.byProfile).flatMap((row) => Object.keys(row)))].sort();
  const byProfile = Object.entries(m.byProfile).map(([p, row]) => `<tr><td>${escapeHtml(p)}</td>${configs.map((k) => `<td>${row[k] ?? 0}</td>`).join('')}</tr>`).join('');
  const rows = m.choices.map((b) => `<tr><td>${b.clientId}</td><td>${escapeHtml(b.profile)}</td><td>${b.round}</td><td>${b.task + 1}</td><td><b>${escapeHtml(b.chosen)}</b></td>`
    + `<td>${b.profilingJoules.toFixed(2)}</td><td>${b.candidates.map((x) => `${escapeHtml(x.key)}: ${(x.accuracy * 100).toFixed(1)}% / ${x.joules.toFixed(2)} J${x.kept ? '' : ' (cut)'}${x.chosen ? ' *' : ''}`).join('<br>')}</td></tr>`).join('');
  return `<section><h2>Miro in every client: chosen memory configuration by device profile</h2>
<table id="miro-by-profile"><tr><th>profile</th>${configs.map((k) => `<th>${escapeHtml(k)}</th>`).join('')}</tr>${byProfile}</table>
<p class="note">${m.choices.length} task boundaries profiled, ${m.profilingJoules.toFixed(1)} J of profiling in all (part of the clients' energy).</p>
<table id="miro-boundaries"><tr><th>client</th><th>profile</th><th>round</th><th>task</th><th>chosen</th><th>profiling J</th><th>candidates: held-out accuracy / estimated joules of the task</th></tr>${rows}</table></section>`;
}
