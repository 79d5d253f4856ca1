// Charts of the dashboard, drawn with uPlot (installed from npm by make, served
// from /static/vendor/). Two data sources with one shape, that of
// GET /api/history/series:
//   - the hub's history API (folded from the log, any window 5 min..24 h,
//     surviving restarts), used when it answers;
//   - else the page's own mirror: the tasks it holds (up to 1000, from the
//     snapshot and the live events), bucketed by their timestamps. The charts
//     say which one they show.
// Without uPlot (npm missing) each chart is a note and the figures still work.

import { h, setText } from './dom.js';

export const WINDOWS = [
  [300, '5 min'],
  [900, '15 min'],
  [3600, '1 h'],
  [6 * 3600, '6 h'],
  [86400, '24 h'],
];
export const LIVE_STATES = ['pending', 'assigned', 'running', 'awaiting_approval', 'input_required'];

const COLORS = {
  pending: '#f0a202',
  assigned: '#8b5cf6',
  running: '#2563eb',
  awaiting_approval: '#db2777',
  input_required: '#0891b2',
  completed: '#15803d',
  failed: '#b91c1c',
  cancelled: '#6b7280',
  retried: '#b45309',
  p50: '#2563eb',
  p95: '#f0a202',
  p99: '#b91c1c',
  tokens: '#6d28d9',
  cost: '#15803d',
};
const AGENT_COLORS = ['#2563eb', '#f0a202', '#15803d', '#b91c1c', '#6d28d9', '#0891b2', '#db2777', '#65a30d'];

export const uPlotLoaded = () => typeof window.uPlot === 'function';

const q = (ms) => (ms == null ? null : Math.round(ms));

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** The step of a window: about 60 points, on round seconds. */
export function stepFor(window) {
  for (const s of [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) if (window / s <= 60) return s;
  return 3600;
}

/**
 * The series of GET /api/history/series computed from tasks in memory
 * (`tasks`: the mirror's task objects; `retries`: unix-ms times of
 * task_retried / retry-scheduled task_failed events seen live).
 */
export function seriesFromTasks(tasks, window, nowMs, retries = []) {
  const step = stepFor(window);
  const end = Math.ceil(nowMs / 1000 / step) * step;
  const n = Math.round(window / step);
  const start = end - n * step;
  const t = Array.from({ length: n }, (_, i) => start + (i + 1) * step);
  const zero = () => new Array(n).fill(0);
  const out = { window, step, t, created: zero(), completed: zero(), failed: zero(), cancelled: zero(), retried: zero(), latency_p50_ms: [], latency_p95_ms: [], latency_p99_ms: [], tokens: zero(), cost_usd: zero(), by_state: {}, source: 'memory' };
  for (const s of LIVE_STATES) out.by_state[s] = zero();
  const lat = Array.from({ length: n }, () => []);
  const slot = (ms) => {
    const i = Math.floor((ms / 1000 - start) / step);
    return i >= 0 && i < n ? i : -1;
  };
  const ms = (ts) => (ts ? new Date(ts).getTime() : NaN);
  for (const task of tasks) {
    const created = ms(task.created_at);
    const ended = ms(task.completed_at);
    const assigned = ms(task.assigned_at);
    const started = ms(task.started_at);
    let i = slot(created);
    if (i >= 0) out.created[i] += 1;
    if (!Number.isNaN(ended)) {
      i = slot(ended);
      if (i >= 0) {
        if (task.status === 'completed') {
          out.completed[i] += 1;
          if (!Number.isNaN(started)) lat[i].push(ended - started);
          if (task.usage) {
            out.tokens[i] += task.usage.total_tokens || 0;
            out.cost_usd[i] += task.usage.cost_usd || 0;
          }
        } else if (task.status === 'failed') out.failed[i] += 1;
        else if (task.status === 'cancelled') out.cancelled[i] += 1;
      }
    }
    // the state at the end of each bucket, from the task's timestamps (the last
    // attempt's: earlier attempts of a retried task are not in the mirror)
    const first = Math.max(0, Math.ceil((created / 1000 - start) / step) - 1);
    for (let k = first; k < n; k++) {
      const at = t[k] * 1000;
      if (created > at) continue;
      if (!Number.isNaN(ended) && ended <= at) break; // (t is ascending)
      let st;
      if (!Number.isNaN(started) && started <= at) st = 'running';
      else if (!Number.isNaN(assigned) && assigned <= at) st = 'assigned';
      else if (WAITING_NOW.has(task.status)) st = task.status;
      else st = 'pending';
      out.by_state[st][k] += 1;
    }
  }
  for (const r of retries) {
    const i = slot(r);
    if (i >= 0) out.retried[i] += 1;
  }
  for (let k = 0; k < n; k++) {
    const s = lat[k].sort((a, b) => a - b);
    out.latency_p50_ms.push(q(percentile(s, 50)));
    out.latency_p95_ms.push(q(percentile(s, 95)));
    out.latency_p99_ms.push(q(percentile(s, 99)));
  }
  return out;
}
const WAITING_NOW = new Set(['awaiting_approval', 'input_required']);

/** Running tasks per agent at the end of each bucket of `series.t` (from the mirror). */
export function agentLoad(tasks, t, agentName) {
  const by = new Map();
  for (const task of tasks) {
    const agent = task.assigned_agent_id;
    const started = task.started_at ? new Date(task.started_at).getTime() : NaN;
    if (!agent || Number.isNaN(started)) continue;
    const ended = task.completed_at ? new Date(task.completed_at).getTime() : Infinity;
    let row = by.get(agent);
    for (let k = 0; k < t.length; k++) {
      const at = t[k] * 1000;
      if (started <= at && ended > at) {
        if (!row) by.set(agent, (row = new Array(t.length).fill(0)));
        row[k] += 1;
      }
    }
  }
  return [...by.entries()].map(([id, values]) => ({ id, label: agentName(id), values })).sort((a, b) => a.label.localeCompare(b.label));
}

// ------------------------------------------------------------------ drawing

function stack(rows) {
  // cumulative sums, drawn biggest first so each band shows its own share
  const acc = [];
  let run = null;
  for (const r of rows) {
    run = run ? run.map((v, i) => v + (r[i] || 0)) : r.map((v) => v || 0);
    acc.push(run);
  }
  return acc;
}

const axisTime = (span) => ({
  stroke: '#6b7280',
  grid: { stroke: '#eceef2' },
  ticks: { stroke: '#eceef2' },
  values: (u, splits) => splits.map((s) => {
    const d = new Date(s * 1000);
    const range = splits.length > 1 ? splits[splits.length - 1] - splits[0] : span;
    const hh = String(d.getHours()).padStart(2, '0');
    const mm = String(d.getMinutes()).padStart(2, '0');
    return range <= 900 ? `${hh}:${mm}:${String(d.getSeconds()).padStart(2, '0')}` : `${hh}:${mm}`;
  }),
});
const axisY = (fmt) => ({ stroke: '#6b7280', grid: { stroke: '#eceef2' }, ticks: { stroke: '#eceef2' }, size: 62, values: (u, s) => s.map(fmt) });
const fmtCount = (v) => (v == null ? '' : Number.isInteger(v) ? String(v) : v.toFixed(1));
export const fmtAxisMs = (v) => (v == null ? '' : v >= 60_000 ? `${(v / 60_000).toFixed(1)}m` : v >= 1000 ? `${(v / 1000).toFixed(1)}s` : `${Math.round(v)}ms`);

/**
 * One chart: a titled box that holds a uPlot (or a note without it). `update`
 * takes {t, series: [{label, values, color, fill}], stacked, fmt} and keeps the
 * plotted arrays on the box (`box.chartData`) and a sum on `data-total` so a
 * reader (or a test) can see what is drawn.
 */
export class Chart {
  constructor({ key, title, note = '' }) {
    this.key = key;
    this.plot = null;
    this.sig = '';
    this.body = h('div', { class: 'chart-body' });
    this.noteNode = h('p', { class: 'chart-note', testid: 'chart-note' }, note);
    this.legend = h('div', { class: 'chart-legend', testid: 'chart-legend' });
    this.root = h('figure', { class: 'chart', testid: 'chart', dataset: { chart: key } }, h('figcaption', {}, title), this.legend, this.body, this.noteNode);
    if (!uPlotLoaded()) {
      this.root.dataset.state = 'no-library';
      this.body.replaceChildren(h('p', { class: 'empty', testid: 'chart-missing' }, 'Charts are off: uPlot is not installed (run make install, which needs npm).'));
    }
    this.ro = null;
  }

  note(text) {
    setText(this.noteNode, text);
  }

  update({ t, series, stacked = false, fmt = fmtCount, window: span = 300 }) {
    const values = series.map((s) => s.values);
    const total = values.reduce((sum, v) => sum + v.reduce((a, b) => a + (b || 0), 0), 0);
    this.root.dataset.total = String(Math.round(total * 1e6) / 1e6);
    this.root.dataset.points = String(t.length);
    this.root.chartData = { t, series: series.map((s) => ({ label: s.label, values: s.values })) };
    this.legend.replaceChildren(...series.map((s) => h('span', { class: 'key-item' }, h('span', { class: 'swatch', style: `background:${s.color}` }), s.label)));
    if (!uPlotLoaded()) return;
    const drawn = stacked ? stack(values).reverse() : values;
    const order = stacked ? [...series].reverse() : series;
    const sig = `${span}|${stacked}|${order.map((s) => s.label).join(',')}`;
    const data = [t, ...drawn];
    if (this.plot && this.sig === sig) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.sig = sig;
    const width = Math.max(200, this.body.clientWidth || 300);
    const opts = {
      width,
      height: 170,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [axisTime(span), axisY(fmt)],
      series: [{}, ...order.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, fill: stacked || s.fill ? `${s.color}55` : undefined, points: { show: false }, spanGaps: !stacked }))],
    };
    this.body.replaceChildren();
    this.plot = new window.uPlot(opts, data, this.body);
    if (!this.ro) {
      this.ro = new ResizeObserver(() => {
        const w = Math.max(200, this.body.clientWidth);
        if (this.plot && Math.abs(this.plot.width - w) > 2) this.plot.setSize({ width: w, height: 170 });
      });
      this.ro.observe(this.body);
    }
  }
}

/** The chart specs over one series object (the history API's shape). */
export function chartSpecs(s, load) {
  const c = (key) => COLORS[key];
  return {
    states: { t: s.t, stacked: true, series: LIVE_STATES.map((k) => ({ label: k.replace('_', ' '), values: s.by_state?.[k] || s.t.map(() => 0), color: c(k) })) },
    throughput: { t: s.t, series: [
      { label: `completed / ${s.step}s`, values: s.completed, color: c('completed'), fill: true },
      { label: 'created', values: s.created, color: c('running') },
    ] },
    latency: { t: s.t, fmt: fmtAxisMs, series: [
      { label: 'p50', values: s.latency_p50_ms, color: c('p50') },
      { label: 'p95', values: s.latency_p95_ms, color: c('p95') },
      { label: 'p99', values: s.latency_p99_ms, color: c('p99') },
    ] },
    queue: { t: s.t, series: [{ label: 'pending', values: s.by_state?.pending || s.t.map(() => 0), color: c('pending'), fill: true }] },
    failures: { t: s.t, series: [
      { label: 'failed', values: s.failed, color: c('failed') },
      { label: 'retried', values: s.retried, color: c('retried') },
      { label: 'cancelled', values: s.cancelled, color: c('cancelled') },
    ] },
    agents: { t: s.t, series: load.map((a, i) => ({ label: a.label, values: a.values, color: AGENT_COLORS[i % AGENT_COLORS.length] })) },
    tokens: { t: s.t, series: [{ label: `tokens / ${s.step}s`, values: s.tokens, color: c('tokens'), fill: true }] },
    cost: { t: s.t, fmt: (v) => (v == null ? '' : v === 0 ? '$0' : `$${v < 0.01 ? v.toPrecision(2) : v.toFixed(2)}`), series: [{ label: `USD / ${s.step}s`, values: s.cost_usd, color: c('cost'), fill: true }] },
  };
}

export const CHART_TITLES = {
  states: 'Tasks by state (stacked)',
  throughput: 'Throughput',
  latency: 'Latency percentiles',
  queue: 'Queue depth',
  failures: 'Failures and retries',
  agents: 'Load per agent (running tasks)',
  tokens: 'Token rate',
  cost: 'Cost rate',
};
