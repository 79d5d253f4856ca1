// The dashboard's mirror of the hive: a pure fold of the /ws event stream.
//
// It starts from the `snapshot` message (`{sequence, agents, tasks, status}`)
// and applies each later event exactly as the hub's core does
// (hivehub/core/hive.py, the `_a_*` appliers), so agents and tasks here equal
// what `GET /api/agents` and `GET /api/tasks` answer at the same sequence.
// No DOM and no I/O: tests/js/state.test.mjs checks it against a real hub.

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export const ONLINE = new Set(['idle', 'active', 'learning']);

export function isTerminal(status) {
  return TERMINAL.has(status);
}

function clone(obj) {
  return obj == null ? obj : JSON.parse(JSON.stringify(obj));
}

/** Key of an alert, as the hub computes it (Hive.alert_key). */
export function alertKey(type, d) {
  if (type === 'system_alert') return d.alert_key || `system:${d.title}`;
  if (type === 'resource_alert') return `resource:${d.resource}`;
  return null;
}

/** An alert event as the entry `GET /api/alerts` lists (Hive.active_alerts). */
export function alertEntry(type, d) {
  const key = alertKey(type, d);
  if (type === 'system_alert') {
    return { key, kind: type, level: d.level, title: d.title, message: d.message, details: d.details || {}, timestamp: d.timestamp };
  }
  const pct = (v) => Number(v).toFixed(1);
  return {
    key,
    kind: type,
    level: 'warning',
    title: `High ${d.resource} usage`,
    message: `${d.resource} at ${pct(d.usage_percent)}% (threshold ${pct(d.threshold_percent)}%, ${d.trend})`,
    details: { usage_percent: d.usage_percent, threshold_percent: d.threshold_percent, recommendations: d.recommendations || [] },
    timestamp: d.timestamp,
  };
}

export class HiveState {
  constructor({ keepTerminal = 1000 } = {}) {
    this.keepTerminal = keepTerminal;
    this.reset();
  }

  reset() {
    /** @type {Map<string, object>} */
    this.agents = new Map();
    /** @type {Map<string, object>} insertion order = creation order */
    this.tasks = new Map();
    this.status = null;
    this.sequence = 0;
    /** @type {Map<string, object>} key -> alert entry */
    this.alerts = new Map();
    /** module name -> {status, reason, signals} */
    this.modules = {};
    /** task id -> sequence of its task_created (when seen) */
    this.createdSeq = new Map();
    this.taskTypes = new Set();
  }

  /** Replace everything with a snapshot's data. */
  loadSnapshot(data) {
    this.reset();
    this.sequence = data.sequence ?? 0;
    for (const a of data.agents || []) this.agents.set(a.id, clone(a));
    const tasks = [...(data.tasks || [])].map(clone).sort((a, b) => cmpTime(a.created_at, b.created_at));
    for (const t of tasks) {
      this.tasks.set(t.id, t);
      this.taskTypes.add(t.type);
    }
    this.status = clone(data.status) || null;
    if (this.status?.modules) this.modules = clone(this.status.modules);
    if (Array.isArray(data.alerts)) this.setAlerts(clone(data.alerts));
  }

  /** Replace the alerts with a `GET /api/alerts` answer. */
  setAlerts(list) {
    this.alerts = new Map((list || []).map((a) => [a.key, a]));
  }

  /** Replace the module states with a `GET /api/modules` answer. */
  setModules(report) {
    if (report?.modules) this.modules = clone(report.modules);
    if (report?.status && this.status) this.status.status = report.status;
  }

  /**
   * Apply one event envelope. Returns what changed:
   * `{agents: Set<id>, tasks: Set<id>, alerts, modules, status}` (booleans for the last three).
   */
  apply(ev) {
    const ch = { agents: new Set(), tasks: new Set(), alerts: false, modules: false, status: false, removedAgents: new Set(), removedTasks: new Set() };
    const d = ev.data || {};
    if (typeof ev.sequence === 'number' && ev.sequence > this.sequence) this.sequence = ev.sequence;
    const fn = APPLIERS[ev.type];
    if (fn) fn(this, d, ch, ev);
    return ch;
  }

  // --- projection helpers (hive.py: _release_from_agent, _requeue)

  _release(t, ch) {
    if (t.assigned_agent_id == null) return;
    const a = this.agents.get(t.assigned_agent_id);
    if (!a) return;
    const i = (a.current_tasks || []).indexOf(t.id);
    if (i >= 0) {
      a.current_tasks.splice(i, 1);
      ch.agents.add(a.id);
    }
  }

  _requeue(t, at, due) {
    t.status = 'pending';
    t.pending_input = null;
    t.last_input = null; // the answers of the attempt that ended
    t.updated_at = at;
    t.assigned_agent_id = null;
    t.started_at = null;
    t.assigned_at = null;
    t.progress = 0;
    t.current_step = null;
    t.estimated_completion = null;
    t.next_retry_at = due ?? null;
  }

  _setStatus(t, status, at) {
    t.status = status;
    t.updated_at = at;
    if (status !== 'input_required') t.pending_input = null; // open only while input_required
  }

  /** Drop the oldest finished tasks beyond `keepTerminal`. */
  _trim(ch) {
    let terminal = 0;
    for (const t of this.tasks.values()) if (TERMINAL.has(t.status)) terminal++;
    if (terminal <= this.keepTerminal) return;
    for (const [id, t] of this.tasks) {
      if (terminal <= this.keepTerminal) break;
      if (TERMINAL.has(t.status)) {
        this.tasks.delete(id);
        this.createdSeq.delete(id);
        ch.removedTasks.add(id);
        terminal--;
      }
    }
  }
}

/** The sum of two usages (hivehub/core/usage.py add_usage): one model, the latest one. */
export function addUsage(a, b) {
  if (!a) return { ...b };
  const cost = a.cost_usd == null || b.cost_usd == null ? null : Math.round((a.cost_usd + b.cost_usd) * 1e9) / 1e9;
  return {
    model: b.model,
    prompt_tokens: a.prompt_tokens + b.prompt_tokens,
    completion_tokens: a.completion_tokens + b.completion_tokens,
    total_tokens: a.total_tokens + b.total_tokens,
    cost_usd: cost,
    prompt_tokens_source: weakestSource(a.prompt_tokens_source ?? null, b.prompt_tokens_source ?? null),
  };
}

const CERTAINTY = { server: 0, tokenizer: 1, estimate: 2 };

/** The prompt_tokens_source of a sum (core/usage.py weakest_source): the less certain one. */
function weakestSource(a, b) {
  if (a == null || b == null) return a ?? b;
  return CERTAINTY[a] >= CERTAINTY[b] ? a : b;
}

function cmpTime(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function agentMetricsOnOutcome(a, ok, ms) {
  const m = a.metrics || (a.metrics = {});
  m.tasks_completed = m.tasks_completed || 0;
  m.tasks_failed = m.tasks_failed || 0;
  if (ok) {
    m.tasks_completed += 1;
    m.total_execution_ms = (m.total_execution_ms || 0) + ms;
    m.average_response_time_ms = Math.round((m.total_execution_ms / m.tasks_completed) * 1000) / 1000;
  } else {
    m.tasks_failed += 1;
  }
  m.success_rate = Math.round((m.tasks_completed / (m.tasks_completed + m.tasks_failed)) * 10000) / 10000;
}

function typeStats(a, type) {
  a.type_stats = a.type_stats || {};
  return (a.type_stats[type] = a.type_stats[type] || { completed: 0, failed: 0, total_ms: 0 });
}

const APPLIERS = {
  agent_created(s, d, ch) {
    const a = clone(d.agent);
    a.current_tasks = [];
    s.agents.set(a.id, a);
    ch.agents.add(a.id);
  },
  agent_updated(s, d, ch) {
    const a = s.agents.get(d.agent_id);
    if (!a) return;
    if (d.name != null) a.name = d.name;
    if (d.capabilities != null) a.capabilities = clone(d.capabilities);
    if (d.max_concurrent_tasks != null) a.max_concurrent_tasks = d.max_concurrent_tasks;
    ch.agents.add(a.id);
  },
  agent_status_changed(s, d, ch) {
    const a = s.agents.get(d.agent_id);
    if (!a) return;
    a.status = d.new_status;
    a.status_reason = d.reason;
    ch.agents.add(a.id);
  },
  agent_removed(s, d, ch) {
    if (s.agents.delete(d.agent_id)) {
      ch.removedAgents.add(d.agent_id);
    }
  },
  agent_performance_updated(s, d, ch) {
    // The hub folds metrics from task_completed / task_failed; this event
    // reports the same figures, so take them as they are.
    const a = s.agents.get(d.agent_id);
    if (!a || !d.metrics) return;
    const m = a.metrics || (a.metrics = {});
    for (const k of ['tasks_completed', 'tasks_failed', 'success_rate', 'average_response_time_ms', 'capability_improvements']) {
      if (d.metrics[k] !== undefined) m[k] = d.metrics[k];
    }
    ch.agents.add(a.id);
  },
  task_created(s, d, ch, ev) {
    const t = clone(d.task);
    s.tasks.set(t.id, t);
    s.taskTypes.add(t.type);
    if (ev.sequence) s.createdSeq.set(t.id, ev.sequence);
    ch.tasks.add(t.id);
  },
  task_assigned(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    const a = s.agents.get(d.agent_id);
    if (!t) return;
    if (t.status === 'assigned') s._release(t, ch); // a rebalancing move
    s._setStatus(t, 'assigned', d.timestamp);
    t.assigned_agent_id = d.agent_id;
    t.assigned_at = d.timestamp;
    t.attempt = d.attempt_number;
    t.estimated_completion = d.estimated_completion ?? null;
    t.next_retry_at = null;
    t.output = ''; // a new attempt streams its own output
    if (a) {
      (a.current_tasks = a.current_tasks || []).push(t.id);
      ch.agents.add(a.id);
    }
    ch.tasks.add(t.id);
  },
  task_started(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    s._setStatus(t, 'running', d.timestamp);
    t.started_at = d.timestamp;
    ch.tasks.add(t.id);
  },
  task_progress(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    t.progress = d.progress;
    t.current_step = d.current_step ?? null;
    t.estimated_completion = d.estimated_completion ?? null;
    t.updated_at = d.timestamp;
    if (d.output_delta) t.output = (t.output || '') + d.output_delta;
    ch.tasks.add(t.id);
  },
  task_completed(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (t && d.usage) t.usage = addUsage(t.usage, d.usage); // the attempt's usage joins the task's
    const a = s.agents.get(d.agent_id);
    if (!t) return;
    s._setStatus(t, 'completed', d.timestamp);
    t.result = d.result ?? null;
    t.error = null;
    t.progress = 1.0;
    t.completed_at = d.timestamp;
    t.execution_time_ms = d.execution_time_ms;
    s._release(t, ch);
    if (a) {
      agentMetricsOnOutcome(a, true, d.execution_time_ms);
      const st = typeStats(a, t.type);
      st.completed += 1;
      st.total_ms += d.execution_time_ms;
      ch.agents.add(a.id);
    }
    ch.tasks.add(t.id);
    s._trim(ch);
  },
  task_failed(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (t && d.usage) t.usage = addUsage(t.usage, d.usage); // the attempt's usage joins the task's
    if (!t) return;
    const a = d.agent_id ? s.agents.get(d.agent_id) : null;
    t.error = clone(d.error);
    if (d.failure_kind !== 'dependency_failed' && d.failure_kind !== 'rate_limited') t.failures = (t.failures || 0) + 1;
    if (a) {
      t.failed_agents = t.failed_agents || [];
      if (!t.failed_agents.includes(a.id)) t.failed_agents.push(a.id);
      agentMetricsOnOutcome(a, false, 0);
      typeStats(a, t.type).failed += 1;
      ch.agents.add(a.id);
    }
    s._release(t, ch);
    if (d.retry_scheduled) s._requeue(t, d.timestamp, d.next_retry_at);
    else {
      s._setStatus(t, 'failed', d.timestamp);
      t.completed_at = d.timestamp;
    }
    ch.tasks.add(t.id);
    s._trim(ch);
  },
  task_cancelled(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (t && d.usage) t.usage = addUsage(t.usage, d.usage); // the attempt's usage joins the task's
    if (!t) return;
    s._setStatus(t, 'cancelled', d.timestamp);
    t.cancelled_by = d.cancelled_by;
    t.completed_at = d.timestamp;
    s._release(t, ch);
    ch.tasks.add(t.id);
    s._trim(ch);
  },
  task_retried(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    t.failures = 0;
    t.error = null;
    t.result = null;
    t.cancelled_by = null;
    t.completed_at = null;
    t.failed_agents = [];
    s._requeue(t, d.timestamp, null);
    ch.tasks.add(t.id);
  },
  task_released(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    s._release(t, ch);
    s._requeue(t, d.timestamp, null);
    ch.tasks.add(t.id);
  },
  // human approval and input (hivehub/core/tasklog.py update_task)
  task_approved(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    s._setStatus(t, 'pending', d.timestamp);
    t.approved_by = d.approved_by;
    ch.tasks.add(t.id);
  },
  task_input_required(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    s._setStatus(t, 'input_required', d.timestamp);
    t.pending_input = {
      request_id: d.request_id,
      question: d.question,
      choices: d.choices ?? null,
      timeout_seconds: d.timeout_seconds,
      requested_at: d.timestamp,
      deadline: d.deadline,
    };
    ch.tasks.add(t.id);
  },
  task_input_received(s, d, ch) {
    const t = s.tasks.get(d.task_id);
    if (!t) return;
    s._setStatus(t, 'running', d.timestamp);
    t.last_input = {
      request_id: d.request_id,
      attempt: d.attempt_number,
      answer: d.answer ?? null,
      answered_by: d.answered_by,
      timed_out: !!d.timed_out,
      answered_at: d.timestamp,
    };
    ch.tasks.add(t.id);
  },
  learning_cycle_started(s, d, ch) {
    const a = s.agents.get(d.agent_id);
    if (a) {
      a.learning_cycle = { cycle_id: d.cycle_id, target_capability: d.target_capability, started_at: d.timestamp };
      ch.agents.add(a.id);
    }
  },
  learning_cycle_completed(s, d, ch) {
    const a = s.agents.get(d.agent_id);
    if (!a) return;
    a.learning_cycle = null;
    a.recent_improvements = {};
    for (const [key, imp] of Object.entries(d.improvements || {})) {
      const name = key.endsWith('_proficiency') ? key.slice(0, -'_proficiency'.length) : key;
      a.capabilities = (a.capabilities || []).map((c) => {
        if (c.name !== name) return c;
        if (imp.improvement > 0) a.metrics.capability_improvements = (a.metrics.capability_improvements || 0) + 1;
        return { ...c, proficiency: imp.new_value };
      });
      a.recent_improvements[name] = imp;
    }
    ch.agents.add(a.id);
  },
  agent_learning_reset(s, d, ch) {
    const a = s.agents.get(d.agent_id);
    if (!a) return;
    const reset = d.capabilities || {};
    a.capabilities = (a.capabilities || []).map((c) => (c.name in reset ? { ...c, proficiency: reset[c.name].new_value } : c));
    ch.agents.add(a.id);
  },
  system_alert(s, d, ch) {
    applyAlert(s, 'system_alert', d, ch);
  },
  resource_alert(s, d, ch) {
    applyAlert(s, 'resource_alert', d, ch);
  },
  module_status_changed(s, d, ch) {
    const prev = s.modules[d.module] || {};
    s.modules[d.module] = { ...prev, status: d.new_status, reason: d.reason, affected_functions: d.affected_functions || [] };
    ch.modules = true;
  },
  hive_status_update(s, d, ch) {
    s.status = s.status || { metrics: {} };
    s.status.status = d.status;
    s.status.metrics = { ...(s.status.metrics || {}), ...(d.metrics || {}) };
    ch.status = true;
  },
};

function applyAlert(s, type, d, ch) {
  const key = alertKey(type, d);
  if ((d.state || 'active') === 'cleared') s.alerts.delete(key);
  else s.alerts.set(key, alertEntry(type, d));
  ch.alerts = true;
}
