// The dashboard's views besides the overview, each reached by a hash route so
// it can be linked and Back works:
//   #/agents/<id>    one agent: capabilities and proficiency over time, current
//                    tasks, task history (paged), success and latency over
//                    time, status history, tokens and cost, remove
//   #/tasks?<filter> every stored task, filtered, cursor-paged
//   #/charts         every chart, with a window selector
// And the charts panel the overview and #/charts share.

import { CHART_TITLES, Chart, WINDOWS, agentLoad, chartSpecs, fmtAxisMs, seriesFromTasks, uPlotLoaded } from './charts.js';
import { confirmAction, fmtDateTime, fmtInt, fmtMs, fmtTime, h, idChip, pct, setText, tid } from './dom.js';
import { isTerminal } from './hive-state.js';

const PRIORITY = { 1: 'low', 2: 'medium', 3: 'high', 4: 'critical' };

/** A time of today as its time, else with its date. */
function when(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  return d.toDateString() === new Date().toDateString() ? fmtTime(ts) : fmtDateTime(ts);
}

/** A task as a card (lists of tasks are cards, never wide tables): Enter or a click opens it. */
export function taskCard(ctx, t) {
  const agent = t.agent_id ?? t.assigned_agent_id;
  const li = h(
    'li',
    { class: 'task-card', testid: 'task-card', tabindex: '0', dataset: { taskId: t.id, status: t.status } },
    h('div', { class: 'task-card-head' }, h('span', { class: 'badge', dataset: { status: t.status } }, t.status), h('span', { class: 'task-title' }, t.description || t.type)),
    h(
      'div',
      { class: 'task-sub' },
      `${t.type} · `,
      idChip(t.id),
      agent ? ` · ${ctx.agentName(agent)}` : '',
      ` · ${PRIORITY[t.priority] || t.priority || ''}`,
      ` · created ${when(t.created_at)}`,
      t.finished_at || t.completed_at ? ` · finished ${when(t.finished_at || t.completed_at)}` : '',
      (t.failures ?? 0) > 0 ? ` · ${t.failures} failure(s)` : '',
      t.error_code ? ` · ${t.error_code}` : '',
    ),
  );
  const open = () => ctx.openDetails(t.id, t);
  li.addEventListener('click', open);
  li.addEventListener('keydown', (e) => {
    if (e.target !== li) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open();
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      (e.key === 'ArrowDown' ? li.nextElementSibling : li.previousElementSibling)?.focus();
    }
  });
  return li;
}

/** Cursor paging for a list: Older follows next_cursor, Newer goes back along the cursors seen. */
class Pager {
  constructor(root, load) {
    this.load = load; // (cursor) => Promise<{next_cursor}>
    this.stack = []; // cursors of the pages before this one
    this.cursor = null;
    this.next = null;
    this.prevBtn = h('button', { type: 'button', class: 'btn small', testid: 'pager-prev' }, '← Newer');
    this.nextBtn = h('button', { type: 'button', class: 'btn small', testid: 'pager-next' }, 'Older →');
    this.info = h('span', { class: 'pager-info', testid: 'pager-info' });
    this.prevBtn.addEventListener('click', () => this.go(this.stack.pop() ?? null, false));
    this.nextBtn.addEventListener('click', () => {
      if (!this.next) return;
      this.stack.push(this.cursor);
      this.go(this.next, false);
    });
    root.replaceChildren(this.prevBtn, this.info, this.nextBtn);
  }

  reset() {
    this.stack = [];
    return this.go(null);
  }

  async go(cursor) {
    this.cursor = cursor;
    const page = await this.load(cursor);
    this.next = page?.next_cursor ?? null;
    this.prevBtn.disabled = this.stack.length === 0;
    this.nextBtn.disabled = !this.next;
    const n = page?.tasks?.length ?? 0;
    const total = page?.total != null ? ` of ${fmtInt(page.total)}` : '';
    setText(this.info, `page ${this.stack.length + 1} · ${n} task${n === 1 ? '' : 's'}${total}`);
    this.info.dataset.page = String(this.stack.length + 1);
  }
}

// ------------------------------------------------------------------ charts panel

export class ChartsPanel {
  /** `root` gets a window selector, a source note and one chart per key. */
  constructor(ctx, root, keys, { storageKey = 'hivehub.chartWindow', summaryId = 'chart-summary' } = {}) {
    this.ctx = ctx;
    this.root = root;
    this.keys = keys;
    this.storageKey = storageKey;
    this.window = Number(localStorage.getItem(storageKey)) || 300;
    this.charts = new Map(keys.map((k) => [k, new Chart({ key: k, title: CHART_TITLES[k] })]));
    this.buttons = WINDOWS.map(([w, label]) => {
      const b = h('button', { type: 'button', class: 'btn tiny ghost', testid: 'chart-window', dataset: { window: String(w) }, 'aria-pressed': String(w === this.window) }, label);
      b.addEventListener('click', () => this.setWindow(w));
      return b;
    });
    this.source = h('p', { class: 'chart-source', testid: 'chart-source' });
    this.summary = h('p', { class: 'chart-summary', testid: summaryId }, 'No completions yet.');
    root.replaceChildren(
      h('div', { class: 'chart-toolbar' }, h('div', { class: 'chart-windows', role: 'group', 'aria-label': 'Time window' }, ...this.buttons), this.source),
      h('div', { class: 'chart-grid' }, ...[...this.charts.values()].map((c) => c.root)),
      this.summary,
    );
    this.busy = false;
    this.lastFetch = 0;
  }

  setWindow(w) {
    this.window = w;
    localStorage.setItem(this.storageKey, String(w));
    for (const b of this.buttons) b.setAttribute('aria-pressed', String(Number(b.dataset.window) === w));
    this.refresh(true);
  }

  /** Redraw: from the history API at most every 5 s (or when forced), else from the mirror. */
  async refresh(force = false) {
    if (this.busy || !this.root.isConnected || this.root.closest('[hidden]')) return;
    const ctx = this.ctx;
    const tasks = [...ctx.state.tasks.values()];
    let s = null;
    const useApi = ctx.history.available !== false || force;
    if (useApi && (force || Date.now() - this.lastFetch > 5000 || !this.last)) {
      this.busy = true;
      try {
        s = await ctx.history.series(this.window);
        this.lastFetch = Date.now();
        if (s) this.last = s;
      } catch {
        s = null;
      } finally {
        this.busy = false;
      }
    } else if (ctx.history.available && this.last?.window === this.window) s = this.last;
    const fromApi = !!s;
    if (!s) s = seriesFromTasks(tasks, this.window, ctx.serverNow(), ctx.retries);
    const load = agentLoad(tasks, s.t, ctx.agentName);
    const specs = chartSpecs(s, load);
    for (const [k, chart] of this.charts) chart.update({ ...specs[k], window: this.window });
    this.charts.get('agents')?.note('from the tasks this page holds');
    this.root.dataset.source = fromApi ? 'history' : 'memory';
    setText(
      this.source,
      `${fromApi ? "from the hub's history" : 'from the tasks this page holds (the hub has no history API)'} · every ${s.step} s${uPlotLoaded() ? '' : ' · charts off: uPlot missing'}`,
    );
    const done = s.completed.reduce((a, b) => a + (b || 0), 0);
    const failed = s.failed.reduce((a, b) => a + (b || 0), 0);
    const lat = s.latency_p50_ms.filter((v) => v != null);
    const label = WINDOWS.find(([w]) => w === this.window)?.[1] ?? `${this.window} s`;
    this.summary.dataset.total = String(done);
    setText(this.summary, done || failed ? `${done} completed, ${failed} failed in ${label} · ${(done / (this.window / 60)).toFixed(1)}/min${lat.length ? ` · p50 ${fmtMs(lat[lat.length - 1])}` : ''}` : `No completions in the last ${label}.`);
  }
}

// ------------------------------------------------------------------ agent page

export class AgentView {
  constructor(ctx, root) {
    this.ctx = ctx;
    this.root = root;
    this.id = null;
    this.detail = null;
    this.statusRows = [];
    this.profChart = new Chart({ key: 'proficiency', title: 'Proficiency over time' });
    this.successChart = new Chart({ key: 'success', title: 'Success rate' });
    this.latencyChart = new Chart({ key: 'agent-latency', title: 'Latency p50' });
    tid('agent-view-prof-chart').replaceChildren(this.profChart.root);
    tid('agent-view-perf-chart').replaceChildren(this.successChart.root, this.latencyChart.root);
    this.pager = new Pager(tid('agent-view-pager'), (cursor) => this.loadHistory(cursor));
    tid('agent-view-remove').addEventListener('click', () => this.remove());
  }

  async open(id) {
    this.id = id;
    this.detail = null;
    this.statusRows = [];
    tid('agent-view-missing').hidden = true;
    this.root.dataset.agentId = id;
    this.renderLive();
    const c = this.ctx.client;
    try {
      this.detail = await c.request('GET', `/api/agents/${encodeURIComponent(id)}`);
    } catch (err) {
      if (this.id !== id) return;
      const gone = err.status === 404;
      tid('agent-view-missing').hidden = false;
      setText(tid('agent-view-missing'), gone ? `No agent ${id} in the hub (removed?). Its task history is below.` : this.ctx.errorText(err));
    }
    if (this.id !== id) return;
    this.renderLive();
    await Promise.all([this.pager.reset(), this.loadCharts(), this.loadStatusHistory()]);
  }

  close() {
    this.id = null;
  }

  agent() {
    return this.ctx.state.agents.get(this.id) || this.detail;
  }

  /** The parts that follow the mirror: header, facts, capabilities, current tasks. */
  renderLive() {
    if (!this.id) return;
    const a = this.agent();
    const ctx = this.ctx;
    setText(tid('agent-view-name'), a?.name || this.id);
    const badge = tid('agent-view-status');
    setText(badge, a ? a.status : 'unknown');
    badge.dataset.status = a?.status || 'unknown';
    this.root.dataset.status = a?.status || 'unknown';
    const chip = tid('agent-view-id');
    if (chip.dataset.id !== this.id) {
      chip.dataset.id = this.id;
      chip.replaceChildren(idChip(this.id, 'agent-view-id-chip'));
    }
    tid('agent-view-remove').disabled = !ctx.state.agents.has(this.id);
    if (!a) return;
    const m = a.metrics || {};
    const usage = m.usage || this.detail?.metrics?.usage;
    const load = (a.current_tasks || []).length;
    const facts = [
      ['Type', a.type],
      ['Status', `${a.status}${a.draining ? ' (draining)' : ''}`],
      ['Load', `${load} / ${a.max_concurrent_tasks}`],
      ['Success rate', m.success_rate == null ? '–' : pct(m.success_rate, 1)],
      ['Avg time', fmtMs(m.average_response_time_ms)],
      ['Done / failed', `${fmtInt(m.tasks_completed || 0)} / ${fmtInt(m.tasks_failed || 0)}`],
      ['Tokens', usage ? `${fmtInt(usage.total_tokens)} (${fmtInt(usage.prompt_tokens)} prompt + ${fmtInt(usage.completion_tokens)} completion, ${fmtInt(usage.requests)} calls)` : '–'],
      ['Cost', usage ? `$${Number(usage.cost_usd || 0).toFixed(6)}${usage.unpriced_tokens ? ` (+${fmtInt(usage.unpriced_tokens)} unpriced tokens)` : ''}` : '–'],
      ['Joined', fmtDateTime(a.created_at)],
      ['Last seen', fmtDateTime(a.last_seen_at)],
    ];
    if (a.learning_cycle) facts.push(['Learning', a.learning_cycle.target_capability]);
    tid('agent-view-facts').replaceChildren(...facts.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', { dataset: { fact: k } }, v))));
    const sig = JSON.stringify(a.capabilities);
    const caps = tid('agent-view-caps');
    if (caps.dataset.sig !== sig) {
      caps.dataset.sig = sig;
      caps.replaceChildren(
        ...(a.capabilities || []).map((c) =>
          h(
            'li',
            { class: 'cap', dataset: { capability: c.name } },
            h('span', { class: 'cap-name' }, c.name),
            h('span', { class: 'track' }, h('span', { class: 'bar', style: `width:${Math.round(c.proficiency * 100)}%` })),
            h('span', { class: 'cap-value' }, c.proficiency.toFixed(2)),
            c.declared_proficiency != null && c.declared_proficiency !== c.proficiency ? h('small', { class: 'muted' }, ` declared ${c.declared_proficiency.toFixed(2)}`) : null,
          ),
        ),
      );
    }
    const current = [...ctx.state.tasks.values()].filter((t) => t.assigned_agent_id === this.id && !isTerminal(t.status)).sort((x, y) => (x.created_at < y.created_at ? 1 : -1));
    const list = tid('agent-view-current');
    const key = current.map((t) => `${t.id}:${t.status}`).join(',');
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      list.replaceChildren(...current.map((t) => taskCard(ctx, t)));
    }
    tid('agent-view-current-empty').hidden = current.length > 0;
  }

  async loadHistory(cursor) {
    const id = this.id;
    const page = await this.ctx.history.tasks({ agent_id: id, limit: 20, cursor }).catch((err) => {
      this.ctx.toast(this.ctx.errorText(err), 'error');
      return { tasks: [], next_cursor: null, source: 'memory' };
    });
    if (this.id !== id) return page;
    tid('agent-view-history').replaceChildren(...page.tasks.map((t) => taskCard(this.ctx, t)));
    tid('agent-view-history-empty').hidden = page.tasks.length > 0;
    setText(tid('agent-view-history-source'), page.source === 'history' ? 'every task stored' : 'the tasks the hub holds in memory (no history API)');
    return page;
  }

  async loadCharts() {
    const id = this.id;
    const ctx = this.ctx;
    let hist = null;
    try {
      hist = await ctx.history.agent(id);
    } catch {
      hist = null;
    }
    if (this.id !== id) return;
    const colors = ['#2563eb', '#f0a202', '#15803d', '#b91c1c', '#6d28d9', '#0891b2'];
    let prof;
    if (hist?.proficiency) {
      prof = hist.proficiency;
      this.profChart.note("from the hub's history");
    } else {
      prof = await this.proficiencyFromLog(id);
      this.profChart.note('from the learning events in the log');
    }
    if (this.id !== id) return;
    // one time axis: the union of the capabilities' points, each carried forward
    const ts = [...new Set(Object.values(prof).flatMap((p) => p.t))].sort((a, b) => a - b);
    const series = Object.entries(prof).map(([name, p], i) => {
      let j = 0;
      let v = null;
      const values = ts.map((t) => {
        while (j < p.t.length && p.t[j] <= t) v = p.value[j++];
        return v;
      });
      return { label: name, values, color: colors[i % colors.length] };
    });
    this.profChart.update({ t: ts, series, fmt: (v) => (v == null ? '' : v.toFixed(2)), window: 86400 });
    let perf = hist?.tasks;
    if (perf) {
      this.successChart.note("from the hub's history");
      this.latencyChart.note("from the hub's history");
    } else {
      const mine = [...ctx.state.tasks.values()].filter((t) => t.assigned_agent_id === id);
      const s = seriesFromTasks(mine, 3600, ctx.serverNow());
      perf = { t: s.t, completed: s.completed, failed: s.failed, latency_p50_ms: s.latency_p50_ms };
      this.successChart.note('last hour, from the tasks this page holds');
      this.latencyChart.note('last hour, from the tasks this page holds');
    }
    const rate = perf.t.map((_, i) => {
      const n = (perf.completed[i] || 0) + (perf.failed[i] || 0);
      return n ? (100 * (perf.completed[i] || 0)) / n : null;
    });
    this.successChart.update({ t: perf.t, series: [{ label: 'success %', values: rate, color: '#15803d' }], fmt: (v) => (v == null ? '' : `${Math.round(v)}%`), window: 3600 });
    this.latencyChart.update({ t: perf.t, series: [{ label: 'p50', values: perf.latency_p50_ms, color: '#2563eb' }], fmt: fmtAxisMs, window: 3600 });
  }

  /** {cap: {t, value}} from the agent's declared values and its learning_cycle_completed events. */
  async proficiencyFromLog(id) {
    const a = this.agent();
    const start = a?.created_at ? new Date(a.created_at).getTime() / 1000 : Date.now() / 1000;
    const prof = {};
    for (const c of a?.capabilities || []) prof[c.name] = { t: [start], value: [c.declared_proficiency ?? c.proficiency] };
    const events = await this.readLog(['learning_cycle_completed', 'agent_learning_reset'], id);
    for (const ev of events) {
      const t = new Date(ev.timestamp).getTime() / 1000;
      for (const [key, v] of Object.entries(ev.data.improvements || {})) {
        const name = key.replace(/_proficiency$/, '');
        (prof[name] ||= { t: [], value: [] }).t.push(t);
        prof[name].value.push(v.new_value);
      }
    }
    const now = this.ctx.serverNow() / 1000;
    for (const c of a?.capabilities || []) {
      prof[c.name].t.push(now);
      prof[c.name].value.push(c.proficiency);
    }
    return prof;
  }

  /** The agent's events of `types` from the log (a few pages at most: newer logs need the history API). */
  async readLog(types, id) {
    const out = [];
    let since = 0;
    for (let i = 0; i < 5; i++) {
      let page;
      try {
        page = await this.ctx.client.events({ since, types, limit: 1000 });
      } catch {
        break;
      }
      for (const ev of page.events || []) if (ev.data?.agent_id === id || ev.data?.agent?.id === id) out.push(ev);
      if (!page.events?.length || page.next_since == null || page.next_since === since) break;
      since = page.next_since;
    }
    return out;
  }

  async loadStatusHistory() {
    const id = this.id;
    const events = await this.readLog(['agent_created', 'agent_status_changed', 'agent_removed'], id);
    if (this.id !== id) return;
    this.statusRows = events.map(statusRow);
    this.renderStatus();
  }

  /** A live event from app.js: status rows and the facts follow it. */
  onEvent(ev) {
    if (!this.id) return;
    const d = ev.data || {};
    if ((d.agent_id === this.id || d.agent?.id === this.id) && ['agent_created', 'agent_status_changed', 'agent_removed'].includes(ev.type)) {
      if (!this.statusRows.some((r) => r.seq === ev.sequence)) this.statusRows.push(statusRow(ev));
      if (ev.type === 'agent_removed' && this.detail) this.detail = { ...this.detail, status: 'removed', current_tasks: [] };
      this.renderStatus();
    }
  }

  renderStatus() {
    const rows = [...this.statusRows].sort((a, b) => b.seq - a.seq).slice(0, 50);
    tid('agent-view-status-history').replaceChildren(
      ...rows.map((r) => h('li', { testid: 'agent-status-row', dataset: { status: r.status } }, h('time', {}, fmtDateTime(r.at)), h('span', { class: 'badge', dataset: { status: r.status } }, r.status), h('span', { class: 'muted' }, r.why))),
    );
  }

  async remove() {
    const a = this.ctx.state.agents.get(this.id);
    if (!a) return;
    const ok = await confirmAction({ title: `Remove agent ${a.name}?`, body: `Its ${(a.current_tasks || []).length} current task(s) are reassigned to other agents. The agent must register again to come back.`, ok: 'Remove agent' });
    if (!ok) return;
    try {
      const out = await this.ctx.client.removeAgent(a.id);
      this.ctx.toast(`Removed ${a.name}${out?.cleanup_summary ? `: ${out.cleanup_summary.tasks_reassigned} task(s) reassigned` : ''}`, 'ok');
    } catch (err) {
      this.ctx.toast(this.ctx.errorText(err), 'error');
    }
  }
}

function statusRow(ev) {
  const d = ev.data;
  if (ev.type === 'agent_created') return { seq: ev.sequence, at: ev.timestamp, status: d.agent.status || 'registered', why: 'joined' };
  if (ev.type === 'agent_removed') return { seq: ev.sequence, at: ev.timestamp, status: 'removed', why: d.reason || '' };
  return { seq: ev.sequence, at: ev.timestamp, status: d.new_status, why: `from ${d.old_status}: ${d.reason || ''}` };
}

// ------------------------------------------------------------------ task history

const FILTERS = ['status', 'type', 'agent_id', 'owner', 'q', 'from', 'to'];

export class TasksView {
  constructor(ctx, root) {
    this.ctx = ctx;
    this.root = root;
    this.filters = {};
    this.form = tid('history-form');
    this.pager = new Pager(tid('history-pager'), (cursor) => this.load(cursor));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const k of FILTERS) {
        const el = this.form.elements.namedItem(k);
        let v = el?.value?.trim() ?? '';
        if (v && (k === 'from' || k === 'to')) v = new Date(v).toISOString();
        if (v) p.set(k, v);
      }
      location.hash = `#/tasks${p.size ? `?${p}` : ''}`;
    });
    tid('history-reset').addEventListener('click', () => {
      location.hash = '#/tasks';
    });
  }

  /** Open with the filters of the route (a changed hash re-runs the query from the newest page). */
  open(params) {
    this.filters = {};
    for (const k of FILTERS) {
      const v = params.get(k) || '';
      if (v) this.filters[k] = v;
      const el = this.form.elements.namedItem(k);
      if (!el) continue;
      el.value = (k === 'from' || k === 'to') && v ? toLocalInput(v) : v;
    }
    const agents = [...this.ctx.state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    const sel = this.form.elements.namedItem('agent_id');
    const cur = this.filters.agent_id || '';
    sel.replaceChildren(h('option', { value: '' }, 'any'), ...agents.map((a) => h('option', { value: a.id }, a.name)));
    if (cur && !agents.some((a) => a.id === cur)) sel.append(h('option', { value: cur }, this.ctx.agentName(cur)));
    sel.value = cur;
    return this.pager.reset();
  }

  async load(cursor) {
    const note = tid('history-note');
    let page;
    try {
      page = await this.ctx.history.tasks({ ...this.filters, limit: 50, cursor });
    } catch (err) {
      note.dataset.kind = 'error';
      setText(note, this.ctx.errorText(err));
      return { tasks: [], next_cursor: null };
    }
    tid('history-list').replaceChildren(...page.tasks.map((t) => taskCard(this.ctx, t)));
    tid('history-empty').hidden = page.tasks.length > 0;
    this.root.dataset.source = page.source;
    note.dataset.kind = page.ignored?.length ? 'warn' : '';
    setText(
      note,
      page.source === 'history'
        ? 'Every task the hub has stored, newest first.'
        : `The hub has no history API: these are the tasks it holds in memory, newest first.${page.ignored?.length ? ` Not applied here: ${page.ignored.join(', ')}.` : ''}`,
    );
    return page;
  }
}

function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
