// Hive Hub dashboard. Live over /ws with the shared client:
//   1. connect with ?snapshot=1: the first message is the state at sequence S
//   2. apply every later event to the mirror (js/hive-state.js), in sequence order
//   3. on a drop, the client reconnects with ?since=<last sequence>: the hub
//      replays what was missed, duplicates are dropped, so the mirror never
//      skips or double-applies an event
// Rendering is batched in requestAnimationFrame; nothing from the hub is ever
// inserted as HTML (textContent only).

import { $, confirmAction, fmtDateTime, fmtInt, fmtMs, fmtTime, fmtUsd, h, idChip, json, pct, setText, setToast, short, tid } from './js/dom.js';
import { EVENT_TYPES, HiveClient, HiveError, STATES } from './js/hive-client.js';
import { HiveState, ONLINE, isTerminal } from './js/hive-state.js';
import { HistoryApi } from './js/history.js';
import { AgentView, ChartsPanel, TasksView } from './js/views.js';

// Under /ns/NAME/ the page is that namespace's hub (server/namespaces.py): its API
// is under the same prefix, and its token is kept apart from the other namespaces'.
const NAMESPACE_PREFIX = (location.pathname.match(/^\/ns\/[a-z0-9][a-z0-9-]{0,62}/) || [''])[0];
const TOKEN_KEY = NAMESPACE_PREFIX ? `hivehub.token:${NAMESPACE_PREFIX}` : 'hivehub.token';
const FEED_TYPES_KEY = 'hivehub.feedTypes';
const FEED_MAX = 500;
const TASK_ROWS_MAX = 200;
// reconnect soon after the hub is back: full jitter under a 3 s ceiling
// (the client's default ceiling, 30 s, suits scripts better than a person watching)
const RECONNECT = { backoffBase: 250, backoffCap: 3000 };
const TASK_EVENT_TYPES = ['task_created', 'task_assigned', 'task_started', 'task_progress', 'task_completed', 'task_failed', 'task_cancelled', 'task_retried', 'task_released', 'task_recalled', 'task_approval_requested', 'task_approved', 'task_rejected', 'task_input_required', 'task_input_received'];
const WAITING = new Set(['awaiting_approval', 'input_required']);
const PRIORITY = { 1: 'low', 2: 'medium', 3: 'high', 4: 'critical' };

function ago(ts) {
  if (!ts) return '–';
  const s = Math.max(0, (serverNow() - new Date(ts).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

// ------------------------------------------------------------------ state

const state = new HiveState({ keepTerminal: 1000 });
const agentNames = new Map(); // id -> name, kept after removal (for the feed)
let client = null;
let stream = null;
let clockSkew = 0; // server time - local time, ms (from event timestamps)
let completedToday = null;
let failedToday = null;
let alertsLoading = null; // alert/module events buffered while GET /api/alerts is in flight
const retries = []; // unix ms of task_retried and retry-scheduled task_failed seen live (for the charts)
let lastLiveAt = null; // Date.now() when the stream was last known live (for "last updated N s ago")
let history = null; // HistoryApi over the client
let overviewCharts = null;
let allCharts = null;
let agentView = null;
let tasksView = null;
let route = { view: 'overview' };
const feed = []; // newest first: {ev, node}
let feedPaused = false;
let feedUnseen = 0;
let feedTypes = loadFeedTypes();
const dirty = { agentView: true, agents: true, tasks: true, alerts: true, modules: true, metrics: true, details: true, types: true, inbox: true, usage: true };
let llmUsage = null; // /api/hive/status `llm`: {total, by_model, by_type, by_owner}
const blockedReasons = new Map(); // pending task id -> blocked_reason (derived by the hub at read time)
const inboxDrafts = new Map(); // task id -> text typed in its inbox box (kept across re-renders)
let rafPending = false;

const ui = {
  filterStatus: '',
  filterType: '',
  filterText: '',
  detailsTaskId: null,
  detailsStream: null,
  detailsHistory: [],
  detailsFetched: null, // the task shown when it is not in the mirror
};

function serverNow() {
  return Date.now() + clockSkew;
}

function agentName(id) {
  if (!id) return '–';
  return state.agents.get(id)?.name || agentNames.get(id) || short(id);
}

function loadFeedTypes() {
  try {
    const saved = JSON.parse(localStorage.getItem(FEED_TYPES_KEY) || 'null');
    if (Array.isArray(saved)) return new Set(saved);
  } catch {
    /* ignore */
  }
  return new Set([...EVENT_TYPES, 'snapshot', 'error']);
}

function saveFeedTypes() {
  try {
    localStorage.setItem(FEED_TYPES_KEY, JSON.stringify([...feedTypes]));
  } catch {
    /* storage may be off */
  }
}

function schedule(...parts) {
  for (const p of parts) dirty[p] = true;
  if (rafPending) return;
  rafPending = true;
  requestAnimationFrame(() => {
    rafPending = false;
    render();
  });
}

// ------------------------------------------------------------------ connection

function connect() {
  if (stream) stream.close();
  const token = localStorage.getItem(TOKEN_KEY) || null;
  client = new HiveClient({ url: location.origin + NAMESPACE_PREFIX, token });
  history = new HistoryApi(client);
  stream = client.stream({ snapshot: true, ...RECONNECT });
  stream.onState(onConnState);
  stream.on('snapshot', onSnapshot);
  stream.on('*', onEvent);
  renderConn();
}

function onConnState(st, info) {
  if (st === STATES.OPEN) lastLiveAt = Date.now();
  else if (lastLiveAt == null) lastLiveAt = Date.now();
  renderConn();
  renderStale();
  if (st === STATES.CLOSED && info?.error) {
    const e = info.error;
    toast(`Stream refused: ${e.code}: ${e.message}`, 'error');
    if (e.code === 'unauthorized' || e.code === 'forbidden') tid('token-input').focus();
  }
}

let connTimer = null;
function renderConn() {
  const node = tid('connection-state');
  const st = stream ? stream.state : STATES.CONNECTING;
  const info = stream ? stream.stateInfo : {};
  let text;
  let kind;
  clearTimeout(connTimer);
  if (st === STATES.OPEN) {
    text = 'connected';
    kind = 'connected';
  } else if (st === STATES.CONNECTING) {
    text = 'connecting…';
    kind = 'connecting';
  } else if (st === STATES.RECONNECTING) {
    kind = 'reconnecting';
    const left = info.reconnectAt ? Math.ceil((info.reconnectAt - Date.now()) / 1000) : 0;
    text = info.connecting || left <= 0 ? 'reconnecting…' : `reconnecting in ${left}s`;
    connTimer = setTimeout(renderConn, 250);
  } else {
    kind = 'offline';
    text = info?.error ? `offline: ${info.error.code}` : 'offline';
  }
  node.dataset.state = kind;
  const why = info?.reason ? `last close: ${info.code} ${info.reason}` : '';
  node.title = kind === 'reconnecting' ? `${why}${why ? ' · ' : ''}click to reconnect now` : why;
  setText(node, text);
  setText(tid('last-sequence'), stream && stream.lastSequence != null ? stream.lastSequence : '–');
}

/**
 * Honest state: while the stream is not live every figure is greyed and the
 * banner says how old it is; the snapshot/replay on reconnect clears it.
 */
function renderStale() {
  const live = stream?.state === STATES.OPEN;
  const banner = tid('stale-banner');
  document.body.dataset.stale = String(!live && lastLiveAt != null);
  if (live || lastLiveAt == null) {
    banner.hidden = true;
    return;
  }
  const s = Math.max(0, Math.round((Date.now() - lastLiveAt) / 1000));
  banner.hidden = false;
  banner.dataset.age = String(s);
  const info = stream?.stateInfo || {};
  const left = info.reconnectAt ? Math.max(0, Math.ceil((info.reconnectAt - Date.now()) / 1000)) : 0;
  const next = stream?.state === STATES.CLOSED ? 'not reconnecting' : info.connecting || left <= 0 ? 'reconnecting now' : `next try in ${left} s`;
  setText(banner, `Disconnected from the hub: figures are from ${fmtTime(lastLiveAt)}, last updated ${s} s ago (${next}).`);
  renderMetrics();
}

function onSnapshot(ev) {
  const sent = new Date(ev.timestamp).getTime();
  if (!Number.isNaN(sent)) clockSkew = sent - Date.now();
  state.loadSnapshot(ev.data);
  for (const a of state.agents.values()) agentNames.set(a.id, a.name);
  const m = state.status?.metrics || {};
  completedToday = m.completed_tasks_today ?? null;
  failedToday = m.failed_tasks_today ?? null;
  lastLiveAt = Date.now();
  refreshCharts();
  // alerts at the snapshot's sequence when the hub includes them, else fetched
  if (!Array.isArray(ev.data.alerts)) loadAlertsAndModules();
  llmUsage = ev.data.status?.llm ?? llmUsage;
  refreshUsage();
  refreshBlocked();
  schedule('agents', 'tasks', 'alerts', 'modules', 'metrics', 'details', 'types', 'inbox', 'usage');
}

async function loadAlertsAndModules() {
  const buffered = [];
  alertsLoading = buffered;
  try {
    const [alerts, modules] = await Promise.all([client.alerts(), client.modules()]);
    state.setAlerts(alerts);
    state.setModules(modules);
    // events that arrived while the request was in flight are newer: apply them again
    for (const ev of buffered) state.apply(ev);
  } catch (err) {
    if (err instanceof HiveError) toast(`Could not load alerts: ${err.code}: ${err.message}`, 'error');
  } finally {
    if (alertsLoading === buffered) alertsLoading = null;
    schedule('alerts', 'modules', 'metrics');
  }
}

function onEvent(ev) {
  lastLiveAt = Date.now();
  if (ev.type === 'snapshot') {
    addToFeed(ev);
    return;
  }
  if (ev.timestamp) {
    // A live event's timestamp is at most the hub's "now"; replayed ones are older.
    // So the skew only moves up from the snapshot's (fresh) timestamp.
    const t = new Date(ev.timestamp).getTime();
    if (!Number.isNaN(t)) clockSkew = Math.max(clockSkew, t - Date.now());
  }
  if (ev.type === 'error') {
    const d = ev.data || {};
    if (d.code === 'history_truncated') {
      toast('Missed events are no longer in the log: reloading a fresh snapshot', 'warn');
      stream.resync();
    } else if (d.code === 'sequence_reset') {
      toast('The hub started a new event log: reloading a fresh snapshot', 'warn'); // the client resyncs
    }
    addToFeed(ev);
    return;
  }
  const ch = state.apply(ev);
  if (alertsLoading && ['system_alert', 'resource_alert', 'module_status_changed'].includes(ev.type)) alertsLoading.push(ev);
  const d = ev.data || {};
  switch (ev.type) {
    case 'agent_created':
      agentNames.set(d.agent.id, d.agent.name);
      break;
    case 'task_completed':
      if (d.usage) refreshUsage();
      if (completedToday != null) completedToday += 1;
      chartsSoon();
      break;
    case 'task_failed':
      if (!d.retry_scheduled && failedToday != null) failedToday += 1;
      if (d.retry_scheduled) retries.push(new Date(ev.timestamp).getTime());
      chartsSoon();
      break;
    case 'task_retried':
      retries.push(new Date(ev.timestamp).getTime());
      break;
    case 'hive_status_update':
      completedToday = d.metrics?.completed_tasks_today ?? completedToday;
      failedToday = d.metrics?.failed_tasks_today ?? failedToday;
      if (d.llm) {
        llmUsage = d.llm;
        schedule('usage');
      } else refreshUsage();
      refreshBlocked();
      break;
    default:
  }
  if (ch.agents.size || ch.removedAgents.size) schedule('agents', 'metrics');
  if (ch.tasks.size || ch.removedTasks.size) schedule('tasks', 'metrics', 'inbox');
  if (ev.type === 'task_created' || ev.type === 'task_approved' || ev.type === 'task_failed' || ev.type === 'task_released') refreshBlocked();
  if (ch.alerts) schedule('alerts');
  if (ch.modules) schedule('modules');
  if (ch.status) schedule('metrics');
  if (ev.type === 'task_created') schedule('types');
  if (ui.detailsTaskId && (ch.tasks.has(ui.detailsTaskId) || ch.agents.size)) schedule('details');
  if (route.view === 'agent') {
    agentView.onEvent(ev);
    if (ch.agents.has(route.id) || ch.removedAgents.has(route.id) || ch.tasks.size) schedule('agentView');
  }
  addToFeed(ev);
  setText(tid('last-sequence'), stream.lastSequence ?? '–');
}

// ------------------------------------------------------------------ render

function render() {
  if (dirty.metrics) renderMetrics();
  if (dirty.agents) renderAgents();
  if (dirty.types) renderTypeOptions();
  if (dirty.tasks) renderTasks();
  if (dirty.alerts) renderAlerts();
  if (dirty.modules) renderModules();
  if (dirty.details) renderDetails();
  if (dirty.inbox) renderInbox();
  if (dirty.usage) renderUsage();
  if (dirty.agentView && route.view === 'agent') agentView.renderLive();
  for (const k of Object.keys(dirty)) dirty[k] = false;
}

function renderMetrics() {
  dirty.metrics = false;
  const agents = [...state.agents.values()];
  const online = agents.filter((a) => ONLINE.has(a.status)).length;
  const counts = { pending: 0, assigned: 0, running: 0 };
  for (const t of state.tasks.values()) if (t.status in counts) counts[t.status] += 1;
  let slots = 0;
  let held = 0;
  for (const a of agents) {
    if (!ONLINE.has(a.status)) continue;
    slots += a.max_concurrent_tasks || 0;
    held += (a.current_tasks || []).length;
  }
  setText(tid('metric-agents'), `${online} / ${agents.length}`);
  setText(tid('metric-pending'), counts.pending);
  setText(tid('metric-running'), counts.running + counts.assigned);
  setText(tid('metric-completed'), completedToday ?? '–');
  setText(tid('metric-failed'), failedToday ?? '–');
  setText(tid('metric-load'), slots ? pct(held / slots) : '0%');
  const health = tid('hive-health');
  // disconnected, the last health seen is not the hub's health now: say so
  const live = stream?.state === STATES.OPEN;
  const status = !live && lastLiveAt != null ? 'unknown' : state.status?.status || 'unknown';
  health.dataset.status = status;
  setText(health, status);
  health.title = status === 'unknown' && lastLiveAt != null ? `was ${state.status?.status || 'unknown'} at ${fmtTime(lastLiveAt)}` : '';
}

// --- agents

const agentCards = new Map();

function renderAgents() {
  const list = tid('agent-list');
  const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  setText(tid('agent-count'), agents.length);
  tid('agents-empty').hidden = agents.length > 0;
  const seen = new Set();
  for (const a of agents) {
    seen.add(a.id);
    let card = agentCards.get(a.id);
    if (!card) {
      card = buildAgentCard(a);
      agentCards.set(a.id, card);
    }
    updateAgentCard(card, a);
    list.append(card.root); // keeps the sorted order
  }
  for (const [id, card] of agentCards) {
    if (!seen.has(id)) {
      card.root.remove();
      agentCards.delete(id);
    }
  }
  const caps = new Set();
  for (const a of agents) for (const c of a.capabilities || []) caps.add(c.name);
  const dl = $('#known-capabilities');
  const have = [...dl.options].map((o) => o.value).join('\n');
  const want = [...caps].sort();
  if (have !== want.join('\n')) dl.replaceChildren(...want.map((c) => h('option', { value: c })));
}

function buildAgentCard(a) {
  const card = {};
  card.name = h('span', { class: 'agent-name', testid: 'agent-name' });
  card.type = h('span', { class: 'agent-type' });
  card.status = h('span', { class: 'badge', testid: 'agent-status' });
  card.caps = h('ul', { class: 'caps-list', testid: 'agent-capabilities' });
  card.loadBar = h('span', { class: 'bar' });
  card.loadText = h('span', { class: 'meter-text', testid: 'agent-load' });
  card.success = h('span', { testid: 'agent-success' });
  card.latency = h('span', { testid: 'agent-latency' });
  card.done = h('span', { testid: 'agent-done' });
  card.learning = h('span', { class: 'learning-note', testid: 'agent-learning' });
  card.remove = h('button', { type: 'button', class: 'btn small ghost danger', testid: 'agent-remove', title: 'Remove this agent (its tasks are reassigned)' }, 'Remove');
  card.remove.addEventListener('click', (e) => {
    e.stopPropagation();
    removeAgent(card.root.dataset.agentId);
  });
  card.open = h('a', { class: 'agent-open', testid: 'agent-open', href: `#/agents/${encodeURIComponent(a.id)}` }, 'Open →');
  card.root = h(
    'article',
    { class: 'agent-card', testid: 'agent-card', tabindex: '0', 'aria-label': `Agent ${a.name}: open its page` },
    h('div', { class: 'agent-head' }, h('div', {}, card.name, card.type), card.status),
    card.caps,
    h('div', { class: 'meter load' }, h('span', { class: 'meter-label' }, 'Load'), h('span', { class: 'track' }, card.loadBar), card.loadText),
    h(
      'dl',
      { class: 'agent-stats' },
      h('div', {}, h('dt', {}, 'Success'), h('dd', {}, card.success)),
      h('div', {}, h('dt', {}, 'Avg time'), h('dd', {}, card.latency)),
      h('div', {}, h('dt', {}, 'Done/failed'), h('dd', {}, card.done)),
    ),
    h('div', { class: 'agent-foot' }, card.learning, card.open, card.remove),
  );
  card.root.dataset.agentId = a.id;
  // the whole card opens the agent's page (a click, or Enter when focused)
  card.root.addEventListener('click', (e) => {
    if (e.target.closest('button, a')) return;
    openAgent(a.id);
  });
  card.root.addEventListener('keydown', (e) => {
    if (e.target === card.root && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      openAgent(a.id);
    }
  });
  return card;
}

function updateAgentCard(card, a) {
  const r = card.root;
  r.dataset.agentName = a.name;
  r.dataset.status = a.status;
  r.title = `${a.name} (${a.id})`;
  setText(card.name, a.name);
  setText(card.type, a.type);
  setText(card.status, a.status);
  card.status.dataset.status = a.status;
  const capsSig = JSON.stringify([a.capabilities, a.recent_improvements]);
  if (card.capsSig !== capsSig) {
    card.capsSig = capsSig;
    card.caps.replaceChildren(
      ...(a.capabilities || []).map((c) => {
        const imp = a.recent_improvements?.[c.name];
        const delta = imp && imp.improvement ? h('span', { class: imp.improvement > 0 ? 'delta up' : 'delta down' }, `${imp.improvement > 0 ? '+' : ''}${imp.improvement.toFixed(3)}`) : null;
        return h(
          'li',
          { class: 'cap', dataset: { capability: c.name } },
          h('span', { class: 'cap-name' }, c.name),
          h('span', { class: 'track' }, h('span', { class: 'bar', style: `width:${Math.round(c.proficiency * 100)}%` })),
          h('span', { class: 'cap-value' }, c.proficiency.toFixed(2)),
          delta,
        );
      }),
    );
  }
  const load = (a.current_tasks || []).length;
  const max = a.max_concurrent_tasks || 1;
  card.loadBar.style.width = `${Math.min(100, (load / max) * 100)}%`;
  card.loadBar.classList.toggle('full', load >= max);
  setText(card.loadText, `${load} / ${max}`);
  const m = a.metrics || {};
  setText(card.success, m.success_rate == null ? '–' : pct(m.success_rate, 1));
  setText(card.latency, fmtMs(m.average_response_time_ms));
  setText(card.done, `${m.tasks_completed || 0} / ${m.tasks_failed || 0}`);
  setText(card.learning, a.learning_cycle ? `learning ${a.learning_cycle.target_capability}…` : m.capability_improvements ? `${m.capability_improvements} improvement${m.capability_improvements > 1 ? 's' : ''}` : '');
}

async function removeAgent(id) {
  const a = state.agents.get(id);
  if (!a) return;
  const ok = await confirmAction({ title: `Remove agent ${a.name}?`, body: `Its ${(a.current_tasks || []).length} current task(s) are reassigned to other agents. The agent must register again to come back.`, ok: 'Remove agent' });
  if (!ok) return;
  try {
    const out = await client.removeAgent(id);
    const s = out?.cleanup_summary;
    toast(`Removed ${a.name}${s ? `: ${s.tasks_reassigned} task(s) reassigned` : ''}`, 'ok');
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

// --- tasks

const taskRows = new Map();

function renderTypeOptions() {
  const types = [...state.taskTypes].sort();
  const sel = tid('task-filter-type');
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join('\n') !== types.join('\n')) {
    const cur = sel.value;
    sel.replaceChildren(h('option', { value: '' }, 'all'), ...types.map((t) => h('option', { value: t }, t)));
    sel.value = types.includes(cur) ? cur : '';
  }
  const dl = $('#known-types');
  if ([...dl.options].map((o) => o.value).join('\n') !== types.join('\n')) dl.replaceChildren(...types.map((t) => h('option', { value: t })));
}

function taskMatches(t) {
  const f = ui.filterStatus;
  if (f === 'active' ? isTerminal(t.status) : f && t.status !== f) return false;
  if (ui.filterType && t.type !== ui.filterType) return false;
  if (ui.filterText) {
    const q = ui.filterText.toLowerCase();
    const hay = `${t.id} ${t.type} ${t.description} ${agentName(t.assigned_agent_id)} ${t.current_step || ''}`.toLowerCase();
    if (!hay.includes(q)) return false;
  }
  return true;
}

function renderTasks() {
  const tbody = tid('task-rows');
  const all = [...state.tasks.values()];
  const matching = all.filter(taskMatches).sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  const shown = matching.slice(0, TASK_ROWS_MAX);
  setText(tid('task-count'), matching.length > shown.length ? `${shown.length} of ${matching.length}` : matching.length);
  tid('tasks-empty').hidden = shown.length > 0;
  const keep = new Set();
  let prev = null;
  for (const t of shown) {
    keep.add(t.id);
    let row = taskRows.get(t.id);
    if (!row) {
      row = buildTaskRow(t);
      taskRows.set(t.id, row);
    }
    updateTaskRow(row, t);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row.tr) tbody.insertBefore(row.tr, want);
    prev = row.tr;
  }
  for (const [id, row] of taskRows) {
    if (!keep.has(id)) {
      row.tr.remove();
      taskRows.delete(id);
    }
  }
}

function buildTaskRow(t) {
  const row = {};
  row.status = h('span', { class: 'badge', testid: 'task-status' });
  row.title = h('span', { class: 'task-title', testid: 'task-title' });
  row.sub = h('span', { class: 'task-sub' });
  row.subType = h('span', {});
  row.subAttempt = h('span', {});
  row.sub.append(row.subType, idChip(t.id), row.subAttempt);
  row.prio = h('span', { class: 'prio' });
  row.agent = h('span', { class: 'task-agent', testid: 'task-agent' });
  row.bar = h('span', { class: 'bar' });
  row.progressLabel = h('span', { class: 'label' });
  row.progress = h('div', { class: 'progress', testid: 'task-progress' }, row.bar, row.progressLabel);
  row.step = h('span', { class: 'step', testid: 'task-step' });
  row.age = h('span', { class: 'age' });
  row.cancel = h('button', { type: 'button', class: 'btn tiny danger', testid: 'task-cancel', dataset: { action: 'cancel' }, title: 'Cancel this task' }, 'Cancel');
  row.retry = h('button', { type: 'button', class: 'btn tiny', testid: 'task-retry', dataset: { action: 'retry' }, title: 'Put this task back in the queue' }, 'Retry');
  row.tr = h(
    'tr',
    { class: 'task-row', testid: 'task-row', tabindex: '0' },
    h('td', {}, row.status),
    h('td', { class: 'col-task' }, row.title, row.sub),
    h('td', { class: 'col-prio' }, row.prio),
    h('td', {}, row.agent),
    h('td', { class: 'col-progress' }, row.progress, row.step),
    h('td', { class: 'col-age' }, row.age),
    h('td', { class: 'col-actions' }, row.cancel, row.retry),
  );
  row.tr.dataset.taskId = t.id;
  return row;
}

function updateTaskRow(row, t) {
  const tr = row.tr;
  tr.dataset.status = t.status;
  tr.dataset.type = t.type;
  tr.classList.toggle('selected', ui.detailsTaskId === t.id);
  setText(row.status, t.status);
  row.status.dataset.status = t.status;
  setText(row.title, t.description || t.type);
  setText(row.subType, `${t.type} · `);
  setText(row.subAttempt, t.attempt > 1 ? ` · attempt ${t.attempt}` : '');
  setText(row.prio, PRIORITY[t.priority] || t.priority);
  row.prio.dataset.priority = PRIORITY[t.priority] || t.priority;
  setText(row.agent, t.assigned_agent_id ? agentName(t.assigned_agent_id) : '–');
  const p = Math.max(0, Math.min(1, t.progress || 0));
  row.bar.style.width = `${(p * 100).toFixed(1)}%`;
  row.progress.dataset.status = t.status;
  row.progress.dataset.value = p.toFixed(3);
  setText(row.progressLabel, pct(p));
  setText(row.step, t.status === 'completed' ? '' : t.error && t.status !== 'running' ? `${t.error.code}: ${t.error.message}` : t.current_step || waitingText(t));
  row.step.dataset.blocked = blockedOf(t) || '';
  setText(row.age, ago(t.created_at));
  row.age.title = fmtDateTime(t.created_at);
  row.cancel.hidden = isTerminal(t.status);
  row.retry.hidden = !(t.status === 'failed' || t.status === 'cancelled');
}

function taskLabel(id) {
  const t = state.tasks.get(id) || ui.detailsFetched;
  return t && t.id === id ? `${t.description || t.type} (${short(id)})` : short(id);
}

async function cancelTask(id) {
  const ok = await confirmAction({ title: `Cancel task ${taskLabel(id)}?`, body: 'An agent running it is told to stop; its partial work is lost. You can retry it later.', ok: 'Cancel task' });
  if (!ok) return;
  try {
    await client.cancelTask(id, 'cancelled from the dashboard');
    toast(`Cancelled task ${short(id)}`, 'ok');
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

async function retryTask(id) {
  const ok = await confirmAction({ title: `Retry task ${taskLabel(id)}?`, body: 'It goes back in the queue with a fresh retry budget and runs again.', ok: 'Retry task', danger: false });
  if (!ok) return;
  try {
    await client.retryTask(id);
    toast(`Task ${short(id)} is back in the queue`, 'ok');
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

// --- task details

/** A task row of the history API as the mirror's task shape (for one the hub no longer holds). */
function fromHistoryRow(r) {
  return { id: r.id, type: r.type, description: r.description, status: r.status, priority: r.priority, assigned_agent_id: r.agent_id, created_by: r.owner, created_at: r.created_at, updated_at: r.updated_at, completed_at: r.finished_at, attempt: r.attempts, failures: r.failures, error: r.error_code ? { code: r.error_code, message: '' } : null, required_capabilities: [] };
}

async function openDetails(id, row = null) {
  if (!state.tasks.has(id)) {
    // not in the page's mirror (older than what it keeps): ask the hub, else show the history row
    try {
      ui.detailsFetched = await client.request('GET', `/api/tasks/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!row) {
        toast(errorText(err), 'error');
        return;
      }
      ui.detailsFetched = fromHistoryRow(row);
    }
  } else ui.detailsFetched = null;
  closeDetailsStream();
  ui.detailsTaskId = id;
  ui.detailsHistory = [];
  const dlg = tid('task-details');
  dlg.dataset.taskId = id;
  tid('task-details-copy').dataset.copy = id;
  if (!dlg.open) dlg.showModal();
  // The task's own history (every attempt) replayed from the log, then live.
  // (a task outside the mirror: from the start of the log, filtered by the hub)
  const since = Math.max(0, (state.createdSeq.get(id) ?? 1) - 1);
  const s = client.stream({ taskId: id, since, types: TASK_EVENT_TYPES });
  s.on('*', (ev) => {
    if (ev.type === 'snapshot' || ev.type === 'error' || !ev.sequence) return;
    ui.detailsHistory.push(ev);
    schedule('details');
  });
  ui.detailsStream = s;
  schedule('details', 'tasks');
}

function closeDetailsStream() {
  if (ui.detailsStream) ui.detailsStream.close();
  ui.detailsStream = null;
}

function closeDetails() {
  closeDetailsStream();
  const dlg = tid('task-details');
  if (dlg.open) dlg.close();
  ui.detailsTaskId = null;
  ui.detailsFetched = null;
  schedule('tasks');
}

function attemptsFrom(history) {
  const rows = new Map();
  const get = (n) => {
    if (!rows.has(n)) rows.set(n, { attempt: n, agent: null, assigned: null, started: null, ended: null, outcome: 'in progress', kind: 'open' });
    return rows.get(n);
  };
  let current = 0;
  for (const ev of history) {
    const d = ev.data;
    switch (ev.type) {
      case 'task_assigned': {
        current = d.attempt_number;
        const r = get(current);
        r.agent = d.agent_id;
        r.assigned = d.timestamp;
        r.score = d.score;
        if (d.previous_agent_id) r.note = `moved from ${agentName(d.previous_agent_id)}`;
        break;
      }
      case 'task_started':
        current = d.attempt_number;
        get(current).started = d.timestamp;
        break;
      case 'task_completed': {
        const r = get(d.attempt_number || current);
        r.ended = d.timestamp;
        r.outcome = `completed in ${fmtMs(d.execution_time_ms)}`;
        r.kind = 'completed';
        break;
      }
      case 'task_failed': {
        const r = get(d.attempt_number || current);
        r.ended = d.timestamp;
        r.outcome = `${d.failure_kind || 'failed'}: ${d.error?.code} ${d.error?.message || ''}${d.retry_scheduled ? ' (retry scheduled)' : ''}`;
        r.kind = 'failed';
        break;
      }
      case 'task_cancelled':
        if (current) {
          const r = get(current);
          if (r.kind === 'open') {
            r.ended = d.timestamp;
            r.outcome = `cancelled by ${d.cancelled_by}`;
            r.kind = 'cancelled';
          }
        }
        break;
      case 'task_released':
        if (rows.has(d.attempt_number)) {
          const r = get(d.attempt_number);
          r.ended = d.timestamp;
          r.outcome = `released: ${d.reason}`;
          r.kind = 'released';
        }
        break;
      default:
    }
  }
  return [...rows.values()].sort((a, b) => a.attempt - b.attempt);
}

function renderDetails() {
  const dlg = tid('task-details');
  const id = ui.detailsTaskId;
  if (!id || !dlg.open) return;
  const t = state.tasks.get(id) || (ui.detailsFetched?.id === id ? ui.detailsFetched : null);
  if (!t) {
    setText(tid('task-details-title'), 'Task no longer tracked');
    return;
  }
  dlg.dataset.status = t.status;
  setText(tid('task-details-title'), t.description || t.type);
  setText(tid('task-details-id'), t.id);
  const badge = tid('task-details-status');
  setText(badge, t.status);
  badge.dataset.status = t.status;
  tid('task-details-cancel').hidden = isTerminal(t.status);
  tid('task-details-retry').hidden = !(t.status === 'failed' || t.status === 'cancelled');
  const prog = tid('task-details-progress');
  $('.bar', prog).style.width = `${((t.progress || 0) * 100).toFixed(1)}%`;
  prog.dataset.status = t.status;
  setText($('.label', prog), `${pct(t.progress || 0)}${t.current_step && t.status !== 'completed' ? ` · ${t.current_step}` : ''}`);
  const facts = [
    ['Type', t.type],
    ['Priority', PRIORITY[t.priority] || t.priority],
    ['Agent', t.assigned_agent_id ? `${agentName(t.assigned_agent_id)} (${t.assigned_agent_id})` : '–'],
    ['Attempt', `${t.attempt || 0} (failures ${t.failures || 0} of max ${t.max_retries} retries)`],
    ['Required', (t.required_capabilities || []).map((r) => `${r.name} ≥ ${r.min_proficiency}`).join(', ') || 'none'],
    ['Timeout', `${t.timeout_seconds} s`],
    ['Created', `${fmtDateTime(t.created_at)}${t.created_by ? ` by ${t.created_by}` : ''}`],
    ['Assigned', fmtDateTime(t.assigned_at)],
    ['Started', fmtDateTime(t.started_at)],
    ['Finished', fmtDateTime(t.completed_at)],
    ['Updated', fmtDateTime(t.updated_at)],
  ];
  if (t.next_retry_at) facts.push(['Next retry', fmtDateTime(t.next_retry_at)]);
  if (t.cancelled_by) facts.push(['Cancelled by', t.cancelled_by]);
  if (t.depends_on?.length) facts.push(['Depends on', t.depends_on.map(short).join(', ')]);
  if (t.failed_agents?.length) facts.push(['Failed on', t.failed_agents.map(agentName).join(', ')]);
  if (blockedOf(t)) facts.push(['Waiting for', blockedOf(t)]);
  if (t.requires_approval) facts.push(['Approval', t.approved_by ? `approved by ${t.approved_by}` : 'required']);
  if (t.pending_input) facts.push(['Question', `${t.pending_input.question}${t.pending_input.choices ? ` (${t.pending_input.choices.join(' | ')})` : ''}`]);
  if (t.last_input) facts.push(['Last answer', t.last_input.timed_out ? 'timed out' : `${t.last_input.answer} (by ${t.last_input.answered_by})`]);
  if (t.usage) facts.push(['Usage', usageText(t.usage)]);
  tid('task-details-facts').replaceChildren(...facts.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
  const attempts = attemptsFrom(ui.detailsHistory);
  $('tbody', tid('task-attempts')).replaceChildren(
    ...(attempts.length
      ? attempts.map((r) =>
          h(
            'tr',
            { dataset: { outcome: r.kind }, testid: 'task-attempt' },
            h('td', {}, r.attempt),
            h('td', {}, r.agent ? agentName(r.agent) : '–', r.note ? h('small', {}, ` (${r.note})`) : null),
            h('td', {}, fmtTime(r.assigned, true)),
            h('td', {}, fmtTime(r.started, true)),
            h('td', {}, fmtTime(r.ended, true)),
            h('td', { class: `outcome ${r.kind}` }, r.outcome),
          ),
        )
      : [h('tr', {}, h('td', { colspan: '6', class: 'muted' }, t.attempt ? 'loading history…' : 'not assigned yet'))]),
  );
  const outBox = tid('task-output-box');
  outBox.hidden = !t.output;
  const pre = tid('task-output');
  if (pre.textContent !== (t.output || '')) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = t.output || '';
    if (atEnd) pre.scrollTop = pre.scrollHeight; // follow the stream unless the reader scrolled up
  }
  setText(tid('task-output-size'), t.output ? `${t.output.length} characters${isTerminal(t.status) ? '' : ', streaming'}` : '');
  const errBox = tid('task-error');
  if (t.error) {
    errBox.hidden = false;
    errBox.replaceChildren(h('strong', {}, `${t.error.code}: `), t.error.message, Object.keys(t.error.details || {}).length ? h('pre', { class: 'json' }, json(t.error.details)) : null);
  } else errBox.hidden = true;
  setText(tid('task-result'), t.status === 'completed' || t.result != null ? json(t.result) : t.status === 'failed' || t.status === 'cancelled' ? '(no result)' : '(not finished yet)');
  setText(tid('task-input'), json(t.input));
}

// --- blocked reasons, inbox and LLM usage

/** Why a pending task waits: the hub's `blocked_reason` (on the task, or fetched). */
function blockedOf(t) {
  if (t.status === 'awaiting_approval') return 'approval';
  if (t.status !== 'pending') return null;
  return t.blocked_reason ?? blockedReasons.get(t.id) ?? null;
}

function waitingText(t) {
  const why = blockedOf(t);
  if (t.status === 'input_required') return `question: ${t.pending_input?.question ?? '…'}`;
  return why ? `waiting: ${why}` : '';
}

let blockedTimer = null;
/** Fetch the blocked reasons of pending tasks (derived by the hub; not in the events), at most every 2 s. */
function refreshBlocked() {
  if (blockedTimer || !client) return;
  if (![...state.tasks.values()].some((t) => t.status === 'pending')) {
    blockedReasons.clear();
    return;
  }
  blockedTimer = setTimeout(async () => {
    try {
      const pending = await client.listTasks({ status: 'pending', limit: 200 });
      blockedReasons.clear();
      for (const t of pending) if (t.blocked_reason) blockedReasons.set(t.id, t.blocked_reason);
      schedule('tasks', 'details');
    } catch {
      // (an older hub, or no access: rows show no reason)
    } finally {
      blockedTimer = null;
    }
  }, 2000);
}

let usageTimer = null;
/** Reload `/api/hive/status` `llm`, at most once a second. */
function refreshUsage() {
  if (usageTimer || !client) return;
  usageTimer = setTimeout(async () => {
    try {
      const st = await client.status();
      llmUsage = st.llm ?? null;
      schedule('usage');
    } catch {
      // (shown as it was; the next hive_status_update tries again)
    } finally {
      usageTimer = null;
    }
  }, 1000);
}


function usageText(u) {
  return `${u.model}: ${fmtInt(u.prompt_tokens)} prompt + ${fmtInt(u.completion_tokens)} completion = ${fmtInt(u.total_tokens)} tokens, ${fmtUsd(u.cost_usd)}`;
}

function usageRows(byKey) {
  const entries = Object.entries(byKey || {}).sort((a, b) => (b[1].total_tokens || 0) - (a[1].total_tokens || 0));
  return entries.map(([name, u]) =>
    h(
      'tr',
      { testid: 'usage-row', dataset: { name } },
      h('td', {}, name),
      h('td', {}, fmtInt(u.requests)),
      h('td', {}, fmtInt(u.prompt_tokens)),
      h('td', {}, fmtInt(u.completion_tokens)),
      h('td', {}, fmtInt(u.total_tokens)),
      h('td', { title: u.unpriced_tokens ? `${fmtInt(u.unpriced_tokens)} tokens of models without a price` : '' }, `$${Number(u.cost_usd || 0).toFixed(6)}${u.unpriced_tokens ? ' *' : ''}`),
    ),
  );
}

function renderUsage() {
  const u = llmUsage;
  const total = u?.total;
  const has = !!(total && (total.requests || total.total_tokens));
  tid('usage-empty').hidden = has;
  tid('usage-by-model').hidden = !has;
  tid('usage-by-owner').hidden = !has;
  setText(tid('usage-total'), has ? `${fmtInt(total.total_tokens)} tokens · $${Number(total.cost_usd || 0).toFixed(6)} · ${fmtInt(total.requests)} calls` : '–');
  $('tbody', tid('usage-by-model')).replaceChildren(...usageRows(u?.by_model));
  $('tbody', tid('usage-by-owner')).replaceChildren(...usageRows(u?.by_owner));
}

async function act(id, action, body, done) {
  try {
    await client.request('POST', `/api/tasks/${encodeURIComponent(id)}/${action}`, { body });
    inboxDrafts.delete(id);
    toast(`${done} task ${short(id)}`, 'ok');
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

function inboxItem(t) {
  const owner = t.created_by || 'anonymous';
  const head = h(
    'div',
    { class: 'inbox-head' },
    h('span', { class: 'badge', dataset: { status: t.status } }, t.status === 'input_required' ? 'question' : 'approval'),
    h('button', { type: 'button', class: 'linkish', testid: 'inbox-open', title: 'Open the task' }, t.description || t.type),
    h('span', { class: 'task-sub' }, `${t.type} · ${short(t.id)} · by ${owner} · ${ago(t.updated_at || t.created_at)}`),
  );
  $('[data-testid="inbox-open"]', head).addEventListener('click', () => openDetails(t.id));
  const box = h('input', { type: 'text', class: 'inbox-text', testid: 'inbox-text', autocomplete: 'off' });
  box.value = inboxDrafts.get(t.id) || '';
  box.addEventListener('input', () => inboxDrafts.set(t.id, box.value));
  const li = h('li', { class: 'inbox-item', testid: 'inbox-item', dataset: { taskId: t.id, kind: t.status } }, head);
  if (t.status === 'awaiting_approval') {
    box.placeholder = 'comment or reason (optional)';
    const approve = h('button', { type: 'button', class: 'btn small primary', testid: 'inbox-approve' }, 'Approve');
    const reject = h('button', { type: 'button', class: 'btn small danger', testid: 'inbox-reject' }, 'Reject');
    approve.addEventListener('click', () => act(t.id, 'approve', box.value ? { comment: box.value } : {}, 'Approved'));
    reject.addEventListener('click', () => act(t.id, 'reject', box.value ? { reason: box.value } : {}, 'Rejected'));
    li.append(h('div', { class: 'inbox-actions' }, box, approve, reject));
    return li;
  }
  const q = t.pending_input || {};
  li.append(h('p', { class: 'inbox-question', testid: 'inbox-question' }, q.question || '(question)'));
  const send = (answer) => act(t.id, 'input', q.request_id ? { answer, request_id: q.request_id } : { answer }, 'Answered');
  if (q.choices?.length) {
    const buttons = q.choices.map((c) => {
      const b = h('button', { type: 'button', class: 'btn small', testid: 'inbox-choice', dataset: { choice: c } }, c);
      b.addEventListener('click', () => send(c));
      return b;
    });
    li.append(h('div', { class: 'inbox-actions' }, ...buttons));
  } else {
    box.placeholder = 'your answer';
    const ok = h('button', { type: 'button', class: 'btn small primary', testid: 'inbox-send' }, 'Send');
    ok.addEventListener('click', () => box.value.trim() && send(box.value));
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && box.value.trim()) send(box.value);
    });
    li.append(h('div', { class: 'inbox-actions' }, box, ok));
  }
  if (q.deadline) li.append(h('p', { class: 'muted small' }, `times out ${fmtDateTime(q.deadline)}`));
  return li;
}

function renderInbox() {
  const list = tid('inbox-list');
  const waiting = [...state.tasks.values()].filter((t) => WAITING.has(t.status)).sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
  setText(tid('inbox-count'), waiting.length);
  tid('inbox-empty').hidden = waiting.length > 0;
  // keep the item being typed in: rebuild only when the set or a question changed
  const key = waiting.map((t) => `${t.id}:${t.status}:${t.pending_input?.request_id ?? ''}`).join(',');
  if (list.dataset.key === key) return;
  const focused = document.activeElement?.closest?.('[data-testid="inbox-item"]')?.dataset.taskId;
  list.dataset.key = key;
  list.replaceChildren(...waiting.map(inboxItem));
  if (focused) $(`[data-task-id="${CSS.escape(focused)}"] input`, list)?.focus();
}

// --- alerts and modules

function renderAlerts() {
  const list = tid('alert-list');
  const alerts = [...state.alerts.values()].sort((a, b) => (a.timestamp < b.timestamp ? 1 : -1));
  setText(tid('alert-count'), alerts.length);
  tid('alerts-empty').hidden = alerts.length > 0;
  list.replaceChildren(
    ...alerts.map((a) =>
      h(
        'li',
        { class: `alert level-${a.level}`, testid: 'alert-item', dataset: { key: a.key, level: a.level } },
        h('div', { class: 'alert-head' }, h('span', { class: 'badge', dataset: { status: a.level } }, a.level), h('strong', {}, a.title), h('time', {}, ago(a.timestamp))),
        h('p', {}, a.message),
        a.details?.recommendations?.length ? h('ul', { class: 'recs' }, a.details.recommendations.map((r) => h('li', {}, r))) : null,
      ),
    ),
  );
}

function renderModules() {
  const mods = Object.entries(state.modules || {});
  tid('module-list').replaceChildren(
    ...mods.map(([name, m]) => {
      const signals = Object.entries(m.signals || {})
        .filter(([, v]) => typeof v === 'number')
        .map(([k, v]) => `${k.replace(/_/g, ' ')} ${Number.isInteger(v) ? v : v.toFixed(1)}`)
        .join(' · ');
      return h(
        'li',
        { class: 'module', testid: 'module-item', dataset: { module: name, status: m.status } },
        h('span', { class: 'dot', dataset: { status: m.status } }),
        h('span', { class: 'module-name' }, name.replace(/_/g, ' ')),
        h('span', { class: 'module-reason' }, m.reason || m.status, signals ? h('small', {}, signals) : null),
      );
    }),
  );
}

// ------------------------------------------------------------------ live event feed

const QUIET_TYPES = ['hive_status_update', 'task_progress', 'inter_module_message', 'agent_performance_updated'];

function summarize(ev) {
  const d = ev.data || {};
  const task = (id) => {
    const t = state.tasks.get(id);
    return t ? `${t.type} ${short(id)}` : short(id);
  };
  switch (ev.type) {
    case 'snapshot':
      return `state at sequence ${d.sequence}: ${d.agents?.length ?? 0} agents, ${d.tasks?.length ?? 0} tasks`;
    case 'error':
      return `${d.code}: ${d.message}`;
    case 'task_approval_requested':
      return `${task(d.task_id)} awaits approval (owner ${d.requested_by})`;
    case 'task_approved':
      return `${task(d.task_id)} approved by ${d.approved_by}${d.comment ? `: ${d.comment}` : ''}`;
    case 'task_rejected':
      return `${task(d.task_id)} rejected by ${d.rejected_by}: ${d.reason}`;
    case 'task_input_required':
      return `${task(d.task_id)} asks: ${d.question}${d.choices ? ` (${d.choices.join(' | ')})` : ''}`;
    case 'task_input_received':
      return d.timed_out ? `${task(d.task_id)}: the question timed out` : `${task(d.task_id)} answered by ${d.answered_by}: ${d.answer}`;
    case 'quota_set':
      return `quota ${d.name}: ${['requests_per_minute', 'tokens_per_minute', 'max_concurrent'].filter((k) => d[k] != null).map((k) => `${k} ${d[k]}`).join(', ')}`;
    case 'quota_deleted':
      return `quota ${d.name} deleted by ${d.requested_by}`;
    case 'budget_set':
      return `budget of ${d.owner}: ${d.tokens_per_day ?? '∞'} tokens/day, ${d.cost_usd_per_day != null ? `$${d.cost_usd_per_day}` : '∞'}/day`;
    case 'budget_deleted':
      return `budget of ${d.owner} deleted`;
    case 'agent_created':
      return `${d.agent.name} (${d.agent.type}) joined: ${(d.agent.capabilities || []).map((c) => `${c.name} ${c.proficiency}`).join(', ')}`;
    case 'agent_status_changed':
      return `${agentName(d.agent_id)}: ${d.old_status} → ${d.new_status} (${d.reason})`;
    case 'agent_performance_updated':
      return `${agentName(d.agent_id)}: ${d.metrics.tasks_completed} done, success ${pct(d.metrics.success_rate, 1)}, avg ${fmtMs(d.metrics.average_response_time_ms)}`;
    case 'agent_removed':
      return `${agentName(d.agent_id)} removed (${d.reason}), ${d.cleanup_summary?.tasks_reassigned ?? 0} task(s) reassigned`;
    case 'agent_updated':
      return `${agentName(d.agent_id)} updated`;
    case 'task_created':
      return `${d.task.type} ${short(d.task.id)} "${(d.task.description || '').slice(0, 60)}" ${PRIORITY[d.task.priority] || d.task.priority}, ${d.matching_agents} matching agent(s)`;
    case 'task_assigned':
      return `${task(d.task_id)} → ${agentName(d.agent_id)} (${d.assignment_reason}, score ${Number(d.score || 0).toFixed(2)})`;
    case 'task_started':
      return `${task(d.task_id)} started on ${agentName(d.agent_id)} (attempt ${d.attempt_number})`;
    case 'task_progress':
      return `${task(d.task_id)} ${pct(d.progress)}${d.current_step ? ` ${d.current_step}` : ''}${d.output_delta ? ` +${d.output_delta.length} chars` : ''}`;
    case 'task_completed':
      return `${task(d.task_id)} completed by ${agentName(d.agent_id)} in ${fmtMs(d.execution_time_ms)}${d.usage ? ` · ${d.usage.total_tokens} tokens` : ''}`;
    case 'task_failed':
      return `${task(d.task_id)} failed (${d.failure_kind}): ${d.error?.code} ${d.error?.message || ''}${d.retry_scheduled ? ', retry scheduled' : ''}`;
    case 'task_cancelled':
      return `${task(d.task_id)} cancelled by ${d.cancelled_by} (${d.reason})`;
    case 'task_retried':
      return `${task(d.task_id)} retried by ${d.requested_by} (was ${d.previous_status})`;
    case 'task_released':
      return `${task(d.task_id)} released by ${agentName(d.agent_id)} (${d.reason})`;
    case 'hive_status_update':
      return `${d.status}: ${d.metrics.active_agents}/${d.metrics.total_agents} agents active, ${d.metrics.pending_tasks} pending, load ${pct(d.metrics.system_load)}`;
    case 'system_alert':
      return `[${d.level}] ${d.title}: ${d.message}${d.state === 'cleared' ? ' (cleared)' : ''}`;
    case 'resource_alert':
      return `${d.resource} at ${Number(d.usage_percent).toFixed(1)}% (threshold ${d.threshold_percent}%, ${d.trend})${d.state === 'cleared' ? ' cleared' : ''}`;
    case 'module_status_changed':
      return `${d.module}: ${d.old_status} → ${d.new_status} (${d.reason})`;
    case 'inter_module_message':
      return `${d.from_module} → ${d.to_module}: ${d.message_type}`;
    case 'coordination_event':
      return `${d.event_type} (${d.module})${d.details?.agents_rebalanced != null ? `: ${d.details.agents_rebalanced} agent(s) rebalanced` : ''}`;
    case 'learning_cycle_started':
      return `${agentName(d.agent_id)} learning ${d.target_capability}`;
    case 'learning_cycle_completed':
      return `${agentName(d.agent_id)}: ${Object.entries(d.improvements || {}).map(([k, v]) => `${k.replace(/_proficiency$/, '')} ${v.old_value.toFixed(3)} → ${v.new_value.toFixed(3)}`).join(', ') || 'no change'}`;
    case 'error_occurred':
      return `${d.component}: ${d.error?.code} ${d.error?.message || ''} (${d.severity})`;
    default:
      return '';
  }
}

function category(type) {
  if (type.startsWith('agent_')) return 'agent';
  if (type.startsWith('task_')) return 'task';
  if (type.startsWith('learning_')) return 'learning';
  if (type === 'system_alert' || type === 'resource_alert' || type === 'error_occurred' || type === 'error') return 'alert';
  return 'system';
}

function feedNode(entry) {
  if (entry.node) return entry.node;
  const ev = entry.ev;
  const summary = summarize(ev);
  const node = h(
    'li',
    { class: `feed-item cat-${category(ev.type)}`, testid: 'feed-item', dataset: { type: ev.type, sequence: ev.sequence ?? '' }, tabindex: '0' },
    h('time', {}, fmtTime(ev.timestamp || ev.data?.timestamp || new Date().toISOString(), true)),
    h('span', { class: 'seq' }, ev.sequence ? `#${ev.sequence}` : ''),
    h('span', { class: 'type' }, ev.type),
    h('span', { class: 'summary' }, summary),
  );
  node.addEventListener('click', () => toggleFeedJson(node, ev));
  node.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      toggleFeedJson(node, ev);
    }
  });
  entry.node = node;
  return node;
}

function toggleFeedJson(node, ev) {
  const pre = $('pre', node);
  if (pre) pre.remove();
  else node.append(h('pre', { class: 'json' }, json(ev)));
}

function addToFeed(ev) {
  const entry = { ev, node: null };
  feed.unshift(entry);
  while (feed.length > FEED_MAX) {
    const old = feed.pop();
    if (old.node) old.node.remove();
  }
  if (feedPaused) {
    feedUnseen += 1;
    renderFeedPaused();
  } else if (feedTypes.has(ev.type)) {
    tid('feed-list').prepend(feedNode(entry));
  }
  setText(tid('feed-count'), feed.length);
}

function rebuildFeed() {
  const list = tid('feed-list');
  list.replaceChildren(...feed.filter((e) => feedTypes.has(e.ev.type)).map(feedNode));
  renderTypeSummary();
}

function renderFeedPaused() {
  const note = tid('feed-paused-note');
  note.hidden = !feedPaused;
  setText(note, feedPaused ? `paused · ${feedUnseen} new` : '');
  const btn = tid('feed-pause');
  setText(btn, feedPaused ? 'Resume' : 'Pause');
  btn.setAttribute('aria-pressed', String(feedPaused));
  tid('feed-panel').dataset.paused = String(feedPaused);
}

function toggleFeedPause() {
  feedPaused = !feedPaused;
  if (!feedPaused) {
    feedUnseen = 0;
    rebuildFeed();
  }
  renderFeedPaused();
}

function buildTypeChecks() {
  const box = tid('feed-type-checks');
  const types = ['snapshot', 'error', ...EVENT_TYPES];
  box.replaceChildren(
    ...types.map((t) =>
      h(
        'label',
        { class: `type-check cat-${category(t)}` },
        h('input', { type: 'checkbox', value: t, testid: 'feed-filter', dataset: { type: t }, checked: feedTypes.has(t) }),
        t,
      ),
    ),
  );
  box.addEventListener('change', (e) => {
    const cb = e.target;
    if (!(cb instanceof HTMLInputElement)) return;
    if (cb.checked) feedTypes.add(cb.value);
    else feedTypes.delete(cb.value);
    saveFeedTypes();
    rebuildFeed();
  });
}

function setFeedTypes(types) {
  feedTypes = new Set(types);
  for (const cb of tid('feed-type-checks').querySelectorAll('input')) cb.checked = feedTypes.has(cb.value);
  saveFeedTypes();
  rebuildFeed();
}

function renderTypeSummary() {
  const total = EVENT_TYPES.length + 2;
  setText(tid('feed-type-summary'), feedTypes.size === total ? 'all' : `${feedTypes.size} of ${total}`);
}

// ------------------------------------------------------------------ charts and views

let chartsTimer = null;
/** Redraw the charts soon (a burst of completions is one redraw). */
function chartsSoon() {
  if (chartsTimer) return;
  chartsTimer = setTimeout(() => {
    chartsTimer = null;
    refreshCharts(true);
  }, 700);
}

function refreshCharts(force = false) {
  overviewCharts?.refresh(force);
  allCharts?.refresh(force);
}

/** `#/`, `#/agents/<id>`, `#/tasks?status=..`, `#/charts` -> {view, id, params}. */
function parseRoute(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === 'agents' && parts[1]) return { view: 'agent', id: parts[1], params };
  if (parts[0] === 'tasks') return { view: 'tasks', params };
  if (parts[0] === 'charts') return { view: 'charts', params };
  return { view: 'overview', params };
}

function onRoute() {
  const prev = route;
  route = parseRoute(location.hash);
  for (const v of document.querySelectorAll('.view[data-view]')) v.hidden = v.dataset.view !== route.view;
  for (const a of document.querySelectorAll('.views-nav a')) {
    if (a.dataset.nav === route.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.view = route.view;
  if (route.view !== 'agent') agentView.close();
  if (route.view === 'agent' && (prev.view !== 'agent' || prev.id !== route.id)) {
    agentView.open(route.id);
    const a = state.agents.get(route.id);
    document.title = `${a?.name || route.id} · Hive Hub`;
  } else document.title = route.view === 'overview' ? 'Hive Hub' : `${route.view === 'tasks' ? 'Task history' : 'Charts'} · Hive Hub`;
  if (route.view === 'tasks') tasksView.open(route.params);
  if (route.view !== prev.view) window.scrollTo(0, 0);
  // focus the new view's heading for keyboard and screen-reader users
  if (prev.view !== route.view || prev.id !== route.id) $(`.view[data-view="${route.view}"] h2`)?.setAttribute('tabindex', '-1');
  if (prev.view !== route.view && route.view !== 'overview') $(`.view[data-view="${route.view}"] h2`)?.focus({ preventScroll: true });
  refreshCharts(true);
}

function openAgent(id) {
  location.hash = `#/agents/${encodeURIComponent(id)}`;
}

// ------------------------------------------------------------------ submit form

function addCapRow(name = '', min = 0.5) {
  const rows = tid('cap-rows');
  const row = h(
    'div',
    { class: 'cap-row', testid: 'cap-row' },
    h('input', { class: 'cap-name', placeholder: 'capability', list: 'known-capabilities', testid: 'cap-name', value: name, autocomplete: 'off', 'aria-label': 'Capability name' }),
    h('input', { class: 'cap-min', type: 'number', min: '0', max: '1', step: '0.05', value: String(min), testid: 'cap-min', 'aria-label': 'Minimum proficiency' }),
    h('button', { type: 'button', class: 'btn tiny ghost', testid: 'cap-remove', 'aria-label': 'Remove capability', title: 'Remove' }, '✕'),
  );
  $('button', row).addEventListener('click', () => row.remove());
  rows.append(row);
  return row;
}

function parseInputJson() {
  const ta = tid('submit-input');
  const err = tid('submit-input-error');
  const text = ta.value.trim();
  if (!text) {
    err.hidden = true;
    ta.removeAttribute('aria-invalid');
    return { ok: true, value: null };
  }
  try {
    const value = JSON.parse(text);
    err.hidden = true;
    ta.removeAttribute('aria-invalid');
    return { ok: true, value };
  } catch (e) {
    err.hidden = false;
    setText(err, `Input is not valid JSON: ${e.message}`);
    ta.setAttribute('aria-invalid', 'true');
    return { ok: false };
  }
}

function formMessage(text, kind) {
  const m = tid('submit-message');
  m.dataset.kind = kind || '';
  m.replaceChildren(...(Array.isArray(text) ? text : [text]));
}

async function onSubmitTask(e) {
  e.preventDefault();
  const form = tid('submit-form');
  const type = tid('submit-type').value.trim();
  if (!type) {
    formMessage('Give the task a type.', 'error');
    tid('submit-type').focus();
    return;
  }
  const input = parseInputJson();
  if (!input.ok) {
    formMessage('Fix the input JSON first.', 'error');
    tid('submit-input').focus();
    return;
  }
  const caps = [];
  for (const row of form.querySelectorAll('[data-testid="cap-row"]')) {
    const name = $('.cap-name', row).value.trim();
    if (!name) continue;
    const min = Number($('.cap-min', row).value);
    if (!(min >= 0 && min <= 1)) {
      formMessage(`Minimum proficiency for ${name} must be between 0 and 1.`, 'error');
      return;
    }
    caps.push({ name, min_proficiency: min });
  }
  const timeout = Number(tid('submit-timeout').value);
  const retries = Number(tid('submit-retries').value);
  if (!(timeout > 0)) {
    formMessage('Timeout must be a positive number of seconds.', 'error');
    return;
  }
  if (!(Number.isInteger(retries) && retries >= 0 && retries <= 100)) {
    formMessage('Max retries must be a whole number from 0 to 100.', 'error');
    return;
  }
  const spec = {
    type,
    description: tid('submit-description').value.trim(),
    priority: tid('submit-priority').value,
    required_capabilities: caps,
    input: input.value,
    timeout_seconds: timeout,
    max_retries: retries,
  };
  const btn = tid('submit-button');
  btn.disabled = true;
  formMessage('Submitting…', 'busy');
  try {
    const task = await client.submitTask(spec);
    const link = h('a', { href: `#task-${task.id}`, testid: 'submit-created-link', dataset: { taskId: task.id } }, short(task.id));
    link.addEventListener('click', (ev) => {
      ev.preventDefault();
      openDetails(task.id);
    });
    formMessage(['Created task ', link, ` (${task.status})`], 'ok');
    tid('submit-message').dataset.taskId = task.id;
  } catch (err) {
    formMessage(errorText(err), 'error');
  } finally {
    btn.disabled = false;
  }
}

function errorText(err) {
  if (err instanceof HiveError) {
    const extra = err.status === 401 ? ' (set an access token at the top right)' : '';
    return `${err.code}: ${err.message}${extra}`;
  }
  return String(err?.message || err);
}

// ------------------------------------------------------------------ toasts

function toast(text, kind = 'info') {
  const box = tid('toasts');
  const node = h('div', { class: `toast ${kind}`, testid: 'toast', role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(node);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => node.remove(), kind === 'error' ? 8000 : 4000);
}

// ------------------------------------------------------------------ wiring

function wire() {
  // token
  const tokenInput = tid('token-input');
  tokenInput.value = localStorage.getItem(TOKEN_KEY) || '';
  tid('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = tokenInput.value.trim();
    if (v) localStorage.setItem(TOKEN_KEY, v);
    else localStorage.removeItem(TOKEN_KEY);
    toast(v ? 'Token saved: reconnecting' : 'Token cleared: reconnecting', 'info');
    connect();
  });

  // a click on the connection state while waiting to reconnect: try now
  tid('connection-state').addEventListener('click', () => stream?.connectNow());
  tid('connection-state').style.cursor = 'pointer';

  // task filters
  tid('task-filter-status').addEventListener('change', (e) => {
    ui.filterStatus = e.target.value;
    schedule('tasks');
  });
  tid('task-filter-type').addEventListener('change', (e) => {
    ui.filterType = e.target.value;
    schedule('tasks');
  });
  tid('task-filter-text').addEventListener('input', (e) => {
    ui.filterText = e.target.value.trim();
    schedule('tasks');
  });

  // task rows: actions and details (event delegation)
  const tbody = tid('task-rows');
  tbody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-task-id]');
    if (!tr) return;
    const action = e.target.closest('button[data-action]')?.dataset.action;
    if (action === 'cancel') cancelTask(tr.dataset.taskId);
    else if (action === 'retry') retryTask(tr.dataset.taskId);
    else openDetails(tr.dataset.taskId);
  });
  tbody.addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr[data-task-id]');
    if (!tr || e.target !== tr) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      openDetails(tr.dataset.taskId);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
      next?.focus();
    }
  });

  // details dialog
  const dlg = tid('task-details');
  tid('task-details-close').addEventListener('click', closeDetails);
  dlg.addEventListener('close', closeDetails);
  dlg.addEventListener('click', (e) => {
    if (e.target === dlg) closeDetails(); // backdrop click
  });
  tid('task-details-cancel').addEventListener('click', () => ui.detailsTaskId && cancelTask(ui.detailsTaskId));
  tid('task-details-copy').addEventListener('click', () => {
    const chip = idChip(ui.detailsTaskId || '');
    chip.click(); // the same copy (and toast) as every id chip
  });
  tid('task-details-retry').addEventListener('click', () => ui.detailsTaskId && retryTask(ui.detailsTaskId));

  // submit form
  tid('submit-form').addEventListener('submit', onSubmitTask);
  tid('cap-add').addEventListener('click', () => $('.cap-name', addCapRow()).focus());
  tid('submit-input').addEventListener('input', () => {
    const r = parseInputJson();
    tid('submit-button').disabled = !r.ok;
  });
  addCapRow('', 0.5);

  // feed
  buildTypeChecks();
  renderTypeSummary();
  tid('feed-pause').addEventListener('click', toggleFeedPause);
  tid('feed-types-all').addEventListener('click', () => setFeedTypes(['snapshot', 'error', ...EVENT_TYPES]));
  tid('feed-types-none').addEventListener('click', () => setFeedTypes([]));
  tid('feed-types-quiet').addEventListener('click', () => setFeedTypes(['snapshot', 'error', ...EVENT_TYPES].filter((t) => !QUIET_TYPES.includes(t))));

  // keyboard shortcuts (not while typing)
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    if (e.key === 'Escape' && route.view !== 'overview' && !document.querySelector('dialog[open]')) {
      location.hash = '#/'; // Esc leaves a view (dialogs close themselves first)
    } else if (e.key === '/' && route.view === 'overview') {
      e.preventDefault();
      tid('task-filter-text').focus();
    } else if (e.key === 'p') {
      toggleFeedPause();
    } else if (e.key === 'n') {
      e.preventDefault();
      tid('submit-type').focus();
    }
  });

  // periodic: chart, relative times, module signals
  setInterval(() => refreshCharts(false), 2000);
  setInterval(renderStale, 1000);
  setInterval(() => schedule('tasks', 'alerts'), 5000);
  setInterval(async () => {
    if (!client || stream?.state !== STATES.OPEN) return;
    try {
      state.setModules(await client.modules());
      schedule('modules', 'metrics');
    } catch {
      /* shown by the connection state */
    }
  }, 15_000);
  window.addEventListener('hashchange', onRoute);
}

setToast(toast);
const ctx = {
  state,
  get client() {
    return client;
  },
  get history() {
    return history;
  },
  retries,
  agentName,
  serverNow,
  toast,
  errorText,
  openDetails: (id, row) => openDetails(id, row),
};
wire();
connect();
overviewCharts = new ChartsPanel(ctx, tid('overview-charts'), ['throughput', 'latency']);
allCharts = new ChartsPanel(ctx, tid('all-charts'), ['states', 'throughput', 'latency', 'queue', 'failures', 'agents', 'tokens', 'cost'], { storageKey: 'hivehub.chartsViewWindow', summaryId: 'charts-view-summary' });
agentView = new AgentView(ctx, tid('agent-view'));
tasksView = new TasksView(ctx, tid('tasks-view'));
onRoute();
renderFeedPaused();

// for debugging from the console
window.hive = { get state() { return state; }, get stream() { return stream; }, get client() { return client; }, get history() { return history; }, get charts() { return { overview: overviewCharts, all: allCharts }; } };
