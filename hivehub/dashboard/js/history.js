// The hub's history API (GET /api/history/...), with the fallbacks the page
// uses while a hub does not serve it (404): the chart series from the mirror,
// the task list from GET /api/tasks (cursor paging over the tasks the hub
// holds; no text search, owner or time range there).

import { HiveError } from './hive-client.js';

export class HistoryApi {
  constructor(client) {
    this.client = client;
    /** null: not known yet; true/false: whether the hub serves the history routes. */
    this.available = null;
    this._routes = null;
  }

  /**
   * Which history routes the hub serves, from its OpenAPI document (asked once:
   * asking the routes themselves would log a 404 in the console of every page
   * on a hub without them).
   */
  routes() {
    if (!this._routes) {
      this._routes = this.client
        .request('GET', '/api/openapi.json')
        .then((doc) => new Set(Object.keys(doc?.paths || {}).filter((p) => p.startsWith('/api/history/'))))
        .catch(() => null); // (no document: try the routes themselves)
    }
    return this._routes;
  }

  async _get(path, params, template = path) {
    const routes = await this.routes();
    if (routes && !routes.has(template)) {
      this.available = false;
      return null;
    }
    try {
      const out = await this.client.request('GET', path, { params });
      this.available = true;
      return out;
    } catch (err) {
      // 404 not_found (not agent_not_found): the hub has no such route
      if (err instanceof HiveError && err.status === 404 && err.code === 'not_found') {
        this.available = false;
        return null;
      }
      throw err;
    }
  }

  /** {window, step, t, created, ...} or null without the API. */
  series(window) {
    return this._get('/api/history/series', { window });
  }

  /** {agent_id, proficiency, tasks} or null without the API. */
  agent(id) {
    return this._get(`/api/history/agents/${encodeURIComponent(id)}`, undefined, '/api/history/agents/{agent_id}');
  }

  /**
   * One page of tasks, newest first: {tasks, next_cursor, total, source}.
   * `source` is 'history' or 'memory' (GET /api/tasks: filters it lacks are dropped
   * and listed in `ignored`).
   */
  async tasks(filters) {
    const params = {};
    for (const [k, v] of Object.entries(filters)) if (v !== '' && v != null) params[k] = v;
    params.limit = params.limit || 50;
    const out = await this._get('/api/history/tasks', params);
    if (out) return { ...out, source: 'history', ignored: [] };
    const ignored = ['q', 'owner', 'from', 'to'].filter((k) => params[k] != null);
    const live = {};
    for (const k of ['status', 'type', 'agent_id', 'limit', 'cursor']) if (params[k] != null) live[k] = params[k];
    const page = await this.client.request('GET', '/api/tasks', { params: live });
    const tasks = (page.tasks || []).map((t) => ({
      id: t.id,
      type: t.type,
      description: t.description,
      status: t.status,
      priority: t.priority,
      agent_id: t.assigned_agent_id,
      owner: t.created_by,
      created_at: t.created_at,
      updated_at: t.updated_at,
      finished_at: t.completed_at,
      attempts: t.attempt,
      failures: t.failures,
      error_code: t.error?.code ?? null,
    }));
    return { tasks, next_cursor: page.next_cursor ?? null, total: null, source: 'memory', ignored };
  }
}
