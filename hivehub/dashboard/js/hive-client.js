// Hive Hub JavaScript client: REST helpers and a resumable /ws event stream.
//
// A plain ES module with no dependencies in the browser and no build step.
// In Node.js (20+) it uses globalThis.fetch, and globalThis.WebSocket when
// present (Node 22+); otherwise the `ws` package, imported on first use (or
// registered with setWebSocketImplementation, which clients/js/index.js does).
//
//   const client = new HiveClient({ url: 'http://localhost:3001', token });
//   const task = await client.submitTask({ type: 'text_analysis', input: { text: '...' } });
//   const stream = client.stream({ snapshot: true });
//   stream.on('task_completed', (ev) => console.log(ev.data.task_id, ev.data.result));
//   for await (const ev of stream) { ... }   // leaving the loop closes the stream
//
// Consistency: every logged event carries a gapless `sequence`. The stream
// remembers the last one it delivered and reconnects with `?since=<last>`, so
// the hub replays what was missed; anything at or below the last sequence is
// dropped, so no event is delivered twice.

export const DEFAULT_URL = 'http://localhost:3001';

/** Every event type the hub streams (the 20 of the spec plus 14 extras). */
export const EVENT_TYPES = Object.freeze([
  'agent_created',
  'agent_status_changed',
  'agent_performance_updated',
  'agent_removed',
  'agent_updated',
  'task_created',
  'task_assigned',
  'task_started',
  'task_progress',
  'task_completed',
  'task_failed',
  'task_cancelled',
  'task_retried',
  'task_released',
  'task_recalled',
  'hive_status_update',
  'system_alert',
  'resource_alert',
  'module_status_changed',
  'inter_module_message',
  'coordination_event',
  'learning_cycle_started',
  'learning_cycle_completed',
  'agent_learning_reset',
  'error_occurred',
  // issue 13: people in the loop, quota pools and budgets
  'task_approval_requested',
  'task_approved',
  'task_rejected',
  'task_input_required',
  'task_input_received',
  'quota_set',
  'quota_deleted',
  'budget_set',
  'budget_deleted',
]);

/** Connection states reported by EventStream#onState. */
export const STATES = Object.freeze({
  CONNECTING: 'connecting',
  OPEN: 'open',
  RECONNECTING: 'reconnecting',
  CLOSED: 'closed',
});

/** Close code the hub uses for a subscriber that fell too far behind. */
export const CLOSE_SLOW_CONSUMER = 1013;
/** Close code for a refused connection (bad or missing token, origin, limits). */
export const CLOSE_POLICY = 1008;

/**
 * An error from the hub, a transport or the client itself.
 * `code` is the hub's error code (`not_found`, `invalid_input`, `unauthorized`...)
 * or one of the client's own (`network_error`, `timeout`, `connection_lost`,
 * `closed`, `http_error`, `no_websocket`); `status` is the HTTP status (0 when
 * there was no HTTP response); `details` is the hub's `details` object.
 */
export class HiveError extends Error {
  constructor(message, { code = 'error', status = 0, details = {}, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'HiveError';
    this.code = code;
    this.status = status;
    this.details = details ?? {};
  }

  /** Build from a response body of the shape `{"error": {code, message, details}}`. */
  static fromBody(status, body, context = '') {
    const err = body && typeof body === 'object' ? body.error : null;
    if (err && typeof err === 'object' && typeof err.code === 'string') {
      return new HiveError(err.message || err.code, { code: err.code, status, details: err.details || {} });
    }
    const text = typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : '';
    return new HiveError(`${context ? context + ' ' : ''}HTTP ${status}${text}`, { code: 'http_error', status, details: {} });
  }
}

// ------------------------------------------------------------------ WebSocket implementation

let registeredWebSocket = null;

/** Use this WebSocket class for streams that were not given one (e.g. `ws`'s). */
export function setWebSocketImplementation(impl) {
  registeredWebSocket = impl || null;
}

async function resolveWebSocket(explicit) {
  if (explicit) return explicit;
  if (registeredWebSocket) return registeredWebSocket;
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  try {
    const mod = await import('ws');
    registeredWebSocket = mod.WebSocket || mod.default;
    return registeredWebSocket;
  } catch (cause) {
    throw new HiveError(
      'no WebSocket implementation: run on Node.js 22+, install the "ws" package, or pass { WebSocket }',
      { code: 'no_websocket', cause },
    );
  }
}

/** True for Node's `ws` package, whose constructor takes options (headers). */
function acceptsOptions(impl) {
  return typeof impl === 'function' && impl.prototype && typeof impl.prototype.terminate === 'function';
}

// ------------------------------------------------------------------ helpers

function normalizeBase(url) {
  let base = url;
  if (!base) {
    base = typeof globalThis.location !== 'undefined' && globalThis.location.origin ? globalThis.location.origin : DEFAULT_URL;
  }
  const u = new URL(base, typeof globalThis.location !== 'undefined' ? globalThis.location.href : undefined);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/ws')) path = path.slice(0, -3);
  return `${u.protocol}//${u.host}${path}`;
}

function typesList(types) {
  if (types == null || types === '' || types === '*') return null;
  const list = (Array.isArray(types) ? types : String(types).split(','))
    .map((t) => String(t).trim())
    .filter(Boolean);
  return list.length ? list : null;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

function randomId() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === 'function') return globalThis.crypto.randomUUID().slice(0, 8);
  return Math.random().toString(16).slice(2, 10);
}

// ------------------------------------------------------------------ REST client

/**
 * `new HiveClient({ url, token, fetch, WebSocket, timeout, headers })`
 * - url: the hub's base URL (`http://host:3001`; `ws://` works too). Default: the
 *   page's origin in a browser, else http://localhost:3001.
 * - token: sent as `Authorization: Bearer` on REST and as `?token=` on /ws.
 * - timeout: ms for each REST request (default 30000).
 */
export class HiveClient {
  constructor({ url, token = null, fetch: fetchImpl, WebSocket: wsImpl, timeout = 30_000, headers = {} } = {}) {
    this.baseUrl = normalizeBase(url);
    this.token = token || null;
    this.timeout = timeout;
    this.headers = { ...headers };
    this.WebSocket = wsImpl || null;
    const f = fetchImpl || globalThis.fetch;
    if (typeof f !== 'function') throw new HiveError('no fetch implementation: pass { fetch }', { code: 'no_fetch' });
    this._fetch = fetchImpl ? fetchImpl : (...args) => globalThis.fetch(...args);
  }

  /** The /ws URL for the given query parameters (the token is added). */
  wsUrl(params = {}) {
    const base = this.baseUrl.replace(/^http/, 'ws');
    return `${base}/ws${query({ ...params, token: this.token || undefined })}`;
  }

  /**
   * One REST call. Resolves with the decoded JSON body (null when empty);
   * rejects with HiveError. `ok` lists extra statuses that are not errors.
   */
  async request(method, path, { body, params, ok = [], signal, timeout } = {}) {
    const headers = { Accept: 'application/json', ...this.headers };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const url = `${this.baseUrl}${path}${query(params)}`;
    const ms = timeout ?? this.timeout;
    let res;
    try {
      res = await this._fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal || (ms > 0 && typeof AbortSignal !== 'undefined' && AbortSignal.timeout ? AbortSignal.timeout(ms) : undefined),
      });
    } catch (cause) {
      const timedOut = cause && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
      throw new HiveError(`${method} ${path}: ${timedOut ? `no answer within ${ms} ms` : cause?.message || 'network error'}`, {
        code: timedOut ? 'timeout' : 'network_error',
        cause,
      });
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!res.ok && !ok.includes(res.status)) throw HiveError.fromBody(res.status, data, `${method} ${path}:`);
    return data;
  }

  // --- agents

  /** One page of agents (array; `.nextCursor` is set when there are more). Filters: status, type, capability, limit, cursor. */
  async listAgents(filters = {}) {
    const page = await this.request('GET', '/api/agents', { params: pick(filters, ['status', 'type', 'capability', 'limit', 'cursor']) });
    return withCursor(page.agents, page.next_cursor);
  }

  /** Every agent matching the filters, following the cursors. */
  async *iterAgents(filters = {}) {
    let cursor = filters.cursor;
    do {
      const page = await this.listAgents({ ...filters, cursor });
      yield* page;
      cursor = page.nextCursor;
    } while (cursor);
  }

  getAgent(id) {
    return this.request('GET', `/api/agents/${enc(id)}`);
  }

  /** Register an agent (mostly for tests and tools: real agents use /agents/ws). */
  createAgent(spec) {
    return this.request('POST', '/api/agents', { body: spec });
  }

  updateAgent(id, patch) {
    return this.request('PATCH', `/api/agents/${enc(id)}`, { body: patch });
  }

  /** Remove an agent; its tasks are reassigned. Resolves with the agent_removed data. */
  removeAgent(id) {
    return this.request('DELETE', `/api/agents/${enc(id)}`);
  }

  // --- tasks

  /**
   * One page of tasks, newest first (array; `.nextCursor` is set when there are
   * more). Filters: status, type, agentId, priority, limit (1..1000), cursor, order.
   */
  async listTasks(filters = {}) {
    const f = { ...filters };
    if (f.agentId !== undefined) f.agent_id = f.agentId;
    const page = await this.request('GET', '/api/tasks', {
      params: pick(f, ['status', 'type', 'agent_id', 'priority', 'limit', 'cursor', 'order']),
    });
    return withCursor(page.tasks, page.next_cursor);
  }

  /** Every task matching the filters, following the cursors. */
  async *iterTasks(filters = {}) {
    let cursor = filters.cursor;
    do {
      const page = await this.listTasks({ ...filters, cursor });
      yield* page;
      cursor = page.nextCursor;
    } while (cursor);
  }

  getTask(id) {
    return this.request('GET', `/api/tasks/${enc(id)}`);
  }

  /** Submit a task: `{type, description, priority, required_capabilities, input, timeout_seconds, max_retries, depends_on, id, metadata}`. */
  submitTask(spec) {
    return this.request('POST', '/api/tasks', { body: spec || {} });
  }

  /** Submit up to 1000 tasks at once; all are validated before any is created. */
  async submitTasks(specs) {
    const out = await this.request('POST', '/api/tasks/batch', { body: { tasks: specs } });
    return out.tasks;
  }

  cancelTask(id, reason) {
    return this.request('POST', `/api/tasks/${enc(id)}/cancel`, { body: reason ? { reason: String(reason) } : {} });
  }

  retryTask(id) {
    return this.request('POST', `/api/tasks/${enc(id)}/retry`, { body: {} });
  }

  // --- hive

  /** `GET /api/hive/status`: metrics, module states, sequences. */
  status() {
    return this.request('GET', '/api/hive/status');
  }

  /** `GET /health`: resolves with the report for 503 (unhealthy) too. */
  health() {
    return this.request('GET', '/health', { ok: [503] });
  }

  /** Active alerts (array). */
  async alerts() {
    const out = await this.request('GET', '/api/alerts');
    return out.alerts;
  }

  /** Module states and the signals behind them. */
  modules() {
    return this.request('GET', '/api/modules');
  }

  /** One page of the event log over HTTP: `{events, next_since}`. */
  events({ since = 0, types, limit } = {}) {
    return this.request('GET', '/api/events', { params: { since, types: typesList(types) ?? undefined, limit } });
  }

  /** Open a resumable event stream (see EventStream). */
  stream(options = {}) {
    return new EventStream(this, options);
  }
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null && obj[k] !== '') out[k] = obj[k];
  return out;
}

function withCursor(items, cursor) {
  const arr = Array.isArray(items) ? items : [];
  Object.defineProperty(arr, 'nextCursor', { value: cursor ?? null, enumerable: false });
  return arr;
}

// ------------------------------------------------------------------ event stream

/**
 * A /ws subscription that survives disconnects.
 *
 * options:
 * - types: event types to receive (array or comma list; default all)
 * - agentId, taskId: only events about this agent / task
 * - since: start by replaying the events after this sequence
 * - snapshot: start with `{type: 'snapshot', data: {sequence, agents, tasks, status}}`
 *   (used when no sequence is known yet; later reconnects resume with since)
 * - backoffBase (500 ms), backoffCap (30000 ms): reconnect delay is
 *   random() * min(cap, base * 2^attempt) ("full jitter")
 * - heartbeatInterval (15000 ms), heartbeatTimeout (10000 ms): an app-level
 *   ping is sent every interval; a connection that answers neither the pong
 *   nor any other frame within the timeout is dropped and reconnected
 * - requestTimeout (10000 ms): default timeout of send()
 * - reconnectOnPolicyClose (false): keep retrying after close 1008
 *   (refused: bad token, origin, too many connections); by default the stream
 *   closes and reports the reason
 * - random: the jitter source (Math.random)
 */
export class EventStream {
  constructor(client, options = {}) {
    this.client = client;
    this.options = {
      backoffBase: 500,
      backoffCap: 30_000,
      heartbeatInterval: 15_000,
      heartbeatTimeout: 10_000,
      requestTimeout: 10_000,
      reconnectOnPolicyClose: false,
      random: Math.random,
      ...options,
    };
    this.filters = {
      types: typesList(options.types),
      agentId: options.agentId || null,
      taskId: options.taskId || null,
    };
    /** Sequence of the last logged event delivered (or of the snapshot); null until known. */
    this.lastSequence = Number.isInteger(options.since) ? options.since : null;
    this.state = STATES.CONNECTING;
    /** Details of the last state change: {attempt, delay, reconnectAt, code, reason, error}. */
    this.stateInfo = {};
    this.stats = { connects: 0, reconnects: 0, received: 0, duplicates: 0, heartbeatFailures: 0 };

    this._snapshotWanted = !!options.snapshot;
    this._wantsSnapshots = !!options.snapshot;
    this._urlSince = null;
    this._resumeOverride = null;
    this._handlers = new Map();
    this._stateHandlers = new Set();
    this._pending = new Map();
    this._outbox = [];
    this._sinks = new Set();
    this._attempt = 0;
    this._ws = null;
    this._closed = false;
    this._reconnectTimer = null;
    this._hbTimer = null;
    this._hbCheck = null;
    this._lastRxAt = 0;
    this._idPrefix = `c${randomId()}`;
    this._nextId = 0;
    this._needBaseline = false;
    this._WS = null;
    if (options.autoConnect !== false) Promise.resolve().then(() => this._connect());
  }

  // --- public API

  /** Call handler(event) for events of this type ('*': every event). Returns an unsubscribe function. */
  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(handler);
    return () => this.off(type, handler);
  }

  off(type, handler) {
    this._handlers.get(type)?.delete(handler);
  }

  /** Call handler(state, info) on every state change. Returns an unsubscribe function. */
  onState(handler) {
    this._stateHandlers.add(handler);
    return () => this._stateHandlers.delete(handler);
  }

  /** Resolves once the stream is open (at once if it is). */
  ready(timeout = 30_000) {
    if (this.state === STATES.OPEN) return Promise.resolve(this);
    if (this._closed) return Promise.reject(new HiveError('stream is closed', { code: 'closed' }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new HiveError(`stream not open within ${timeout} ms`, { code: 'timeout' }));
      }, timeout);
      const off = this.onState((state, info) => {
        if (state === STATES.OPEN) {
          clearTimeout(timer);
          off();
          resolve(this);
        } else if (state === STATES.CLOSED) {
          clearTimeout(timer);
          off();
          reject(info.error || new HiveError('stream closed', { code: 'closed' }));
        }
      });
    });
  }

  /**
   * Send a control message (`ping`, `subscribe`, `create_task`, `cancel_task`,
   * `get_status`). Resolves with the reply envelope carrying the same
   * message_id; an `error` reply rejects with HiveError. Messages sent while
   * disconnected wait for the next connection (within the timeout).
   */
  send(type, data = {}, { timeout = this.options.requestTimeout } = {}) {
    if (this._closed) return Promise.reject(new HiveError('stream is closed', { code: 'closed' }));
    const id = `${this._idPrefix}-${++this._nextId}`;
    const frame = JSON.stringify({ type, data: data || {}, message_id: id });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        this._outbox = this._outbox.filter((o) => o.id !== id);
        reject(new HiveError(`no reply to ${type} within ${timeout} ms`, { code: 'timeout', details: { type } }));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer, type, sent: false });
      if (this.state === STATES.OPEN && this._ws) this._transmit(id, frame);
      else this._outbox.push({ id, frame });
    });
  }

  /**
   * Change the filters of this stream (`{types, agentId, taskId}`; keys left
   * out keep their value, null clears). Applies live and to every reconnect.
   */
  subscribe(filters = {}) {
    const data = {};
    if ('types' in filters) {
      this.filters.types = typesList(filters.types);
      data.types = this.filters.types;
    }
    if ('agentId' in filters) {
      this.filters.agentId = filters.agentId || null;
      data.agent_id = this.filters.agentId;
    }
    if ('taskId' in filters) {
      this.filters.taskId = filters.taskId || null;
      data.task_id = this.filters.taskId;
    }
    if (this.state !== STATES.OPEN) {
      // the next connection's URL carries the new filters
      return Promise.resolve({ type: 'subscribed', data: { ...this.filters }, local: true });
    }
    return this.send('subscribe', data);
  }

  /** Drop the connection now and reconnect (after `delay` ms, default: at once), resuming with since. */
  reconnect({ delay = 0 } = {}) {
    if (this._closed) return;
    this._drop(4000, 'client reconnect');
    this._scheduleReconnect({ code: 4000, reason: 'client reconnect' }, delay);
  }

  /** While waiting to reconnect, connect at once instead of after the backoff delay. */
  connectNow() {
    if (this._closed || this._ws || !this._reconnectTimer) return;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._connect();
  }

  /** Forget the position and reconnect with a fresh snapshot (after history was truncated, say). */
  resync() {
    if (this._closed) return;
    this.lastSequence = null;
    this._resumeOverride = null;
    this._snapshotWanted = true;
    this.reconnect();
  }

  /** Close for good: no reconnect; pending sends reject; iterators end. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._drop(1000, 'client closed');
    this._failPending(new HiveError('stream is closed', { code: 'closed' }), true);
    this._setState(STATES.CLOSED, {});
    for (const sink of this._sinks) sink.end();
    this._sinks.clear();
  }

  /** `for await (const ev of stream)`: every event in order; leaving the loop closes the stream. */
  [Symbol.asyncIterator]() {
    const buffer = [];
    let waiter = null;
    let done = false;
    const sink = {
      push: (ev) => {
        if (waiter) {
          const w = waiter;
          waiter = null;
          w({ value: ev, done: false });
        } else buffer.push(ev);
      },
      end: () => {
        done = true;
        if (waiter) {
          const w = waiter;
          waiter = null;
          w({ value: undefined, done: true });
        }
      },
    };
    if (this._closed) done = true;
    else this._sinks.add(sink);
    const stream = this;
    return {
      next() {
        if (buffer.length) return Promise.resolve({ value: buffer.shift(), done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          waiter = resolve;
        });
      },
      return() {
        stream._sinks.delete(sink);
        sink.end();
        stream.close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  // --- connection

  _url() {
    const params = {};
    if (this.filters.types) params.types = this.filters.types.join(',');
    if (this.filters.agentId) params.agent_id = this.filters.agentId;
    if (this.filters.taskId) params.task_id = this.filters.taskId;
    let since = this.lastSequence;
    if (this._resumeOverride !== null) since = since === null ? this._resumeOverride : Math.min(since, this._resumeOverride);
    if (since === null && this._snapshotWanted) params.snapshot = '1';
    else if (since !== null) params.since = since;
    this._urlSince = since;
    // live only with no known position: learn one from get_status once open
    this._needBaseline = since === null && !this._snapshotWanted;
    return this.client.wsUrl(params);
  }

  async _connect() {
    if (this._closed || this._ws) return;
    this._setState(this.stats.connects === 0 && this.stats.reconnects === 0 ? STATES.CONNECTING : STATES.RECONNECTING, {
      attempt: this._attempt,
      connecting: true,
    });
    let WS;
    try {
      WS = this._WS || (this._WS = await resolveWebSocket(this.options.WebSocket || this.client.WebSocket));
    } catch (err) {
      this._emit({ type: 'error', data: { code: err.code, message: err.message, details: {} } });
      this._closed = true;
      this._failPending(err, true);
      this._setState(STATES.CLOSED, { error: err });
      for (const sink of this._sinks) sink.end();
      return;
    }
    if (this._closed || this._ws) return;
    const url = this._url();
    let ws;
    try {
      if (acceptsOptions(WS) && this.client.token) {
        ws = new WS(url, [], { headers: { Authorization: `Bearer ${this.client.token}` } });
      } else {
        ws = new WS(url);
      }
    } catch (err) {
      this._scheduleReconnect({ error: err });
      return;
    }
    this._ws = ws;
    this._opened = false;
    ws.onopen = () => {
      if (this._ws === ws) this._onOpen(ws);
    };
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._onMessage(ev.data);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onClose(ev.code, ev.reason || '');
    };
  }

  _onOpen(ws) {
    this._opened = true;
    this._gotMessage = false;
    this._resumeOverride = null;
    if (this.stats.connects > 0) this.stats.reconnects++;
    this.stats.connects++;
    this._lastRxAt = Date.now();
    this._startHeartbeat(ws);
    this._setState(STATES.OPEN, {});
    const outbox = this._outbox;
    this._outbox = [];
    for (const { id, frame } of outbox) if (this._pending.has(id)) this._transmit(id, frame);
    if (this._urlSince > 0) this._checkLogContinuity(ws, this._urlSince);
    if (this._needBaseline) {
      this._needBaseline = false;
      // The hub queues the reply behind every event published before it, so
      // its published_sequence is a safe position to resume from.
      this.send('get_status', {}).then(
        (reply) => {
          const seq = reply?.data?.published_sequence;
          if (Number.isInteger(seq) && this._ws === ws) this.lastSequence = Math.max(this.lastSequence ?? 0, seq);
        },
        () => {},
      );
    }
  }

  /**
   * A hub restarted on a fresh log (`--db memory`, a new file) numbers its
   * events from 1 again: resuming with since=N would drop them all as
   * duplicates. If the hub's log ends before N, report `sequence_reset` and
   * start over: a new snapshot when the stream asked for one, else a replay
   * of the new log from its start.
   */
  _checkLogContinuity(ws, since) {
    this.send('get_status', {}).then(
      (reply) => {
        const published = reply?.data?.published_sequence;
        if (this._ws !== ws || !Number.isInteger(published) || published >= since) return;
        this._logReset(since, published);
      },
      () => {},
    );
  }

  /** The hub's log ends at `published`, before `since`: report `sequence_reset`, start over. */
  _logReset(since, published) {
    this._emit({
      type: 'error',
      data: {
        code: 'sequence_reset',
        message: `the hub's log ends at ${published}, before the ${since} this stream had reached: it was reset`,
        details: { since, published_sequence: published },
      },
      timestamp: new Date().toISOString(),
      message_id: null,
    });
    this._resumeOverride = null;
    if (this._wantsSnapshots) this.resync();
    else {
      this.lastSequence = 0;
      this.reconnect();
    }
  }

  _transmit(id, frame) {
    const p = this._pending.get(id);
    try {
      this._ws.send(frame);
      if (p) p.sent = true;
    } catch {
      this._outbox.push({ id, frame });
    }
  }

  _onMessage(raw) {
    this._lastRxAt = Date.now();
    if (!this._gotMessage) {
      this._gotMessage = true;
      this._attempt = 0; // the hub is serving us: the next failure starts the backoff afresh
    }
    if (typeof raw !== 'string') {
      if (raw instanceof ArrayBuffer) raw = new TextDecoder().decode(raw);
      else if (raw && typeof raw.toString === 'function') raw = raw.toString();
      else return;
    }
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    this.stats.received++;
    const seq = msg.sequence;
    const logged = typeof seq === 'number' && seq > 0;
    if (!logged && msg.message_id != null && this._pending.has(msg.message_id)) {
      const p = this._pending.get(msg.message_id);
      this._pending.delete(msg.message_id);
      clearTimeout(p.timer);
      if (msg.type === 'error') {
        const d = msg.data || {};
        p.reject(new HiveError(d.message || d.code || 'error', { code: d.code || 'error', details: d.details || {} }));
      } else p.resolve(msg);
      return;
    }
    if (msg.type === 'pong') return;
    // the hub refuses a since beyond its head (then closes 1008 cursor_out_of_range): keep the head
    if (msg.type === 'error' && msg.data?.code === 'cursor_out_of_range') this._refusedCursor = msg.data.details || {};
    if (msg.type === 'snapshot') {
      const s = msg.data?.sequence;
      if (Number.isInteger(s)) this.lastSequence = s;
      this._snapshotWanted = false;
    } else if (logged) {
      if (this.lastSequence !== null && seq <= this.lastSequence) {
        this.stats.duplicates++;
        return;
      }
      this.lastSequence = seq;
    }
    this._emit(msg);
  }

  _emit(msg) {
    for (const key of [msg.type, '*']) {
      const hs = this._handlers.get(key);
      if (!hs) continue;
      for (const h of [...hs]) {
        try {
          h(msg);
        } catch (err) {
          console.error(`HiveClient: handler for ${key} failed`, err);
        }
      }
    }
    for (const sink of this._sinks) sink.push(msg);
  }

  _onClose(code, reason) {
    this._stopHeartbeat();
    this._failPending(new HiveError(`connection closed (${code}${reason ? ': ' + reason : ''}) before the reply`, { code: 'connection_lost' }), false);
    if (this._closed) {
      this._setState(STATES.CLOSED, { code, reason });
      return;
    }
    if (code === CLOSE_SLOW_CONSUMER) {
      const m = /since=(\d+)/.exec(reason);
      if (m) this._resumeOverride = Number(m[1]);
    }
    if (code === CLOSE_POLICY && reason.startsWith('cursor_out_of_range')) {
      // The hub made the _checkLogContinuity check itself: its log ends before our cursor.
      const d = this._refusedCursor || {};
      this._refusedCursor = null;
      this._logReset(d.since ?? this._urlSince, d.head);
      return;
    }
    if (code === CLOSE_POLICY && !this.options.reconnectOnPolicyClose) {
      const m = /^([a-z_]+):\s*(.*)$/.exec(reason);
      const error = new HiveError(m ? m[2] : reason || 'connection refused by the hub', {
        code: m ? m[1] : 'policy_violation',
        details: { close_code: code, reason },
      });
      this._closed = true;
      this._failPending(error, true);
      this._setState(STATES.CLOSED, { code, reason, error });
      for (const sink of this._sinks) sink.end();
      this._sinks.clear();
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect(info = {}, fixedDelay = null) {
    if (this._closed) return;
    clearTimeout(this._reconnectTimer);
    const { backoffBase, backoffCap, random } = this.options;
    const ceiling = Math.min(backoffCap, backoffBase * 2 ** Math.min(this._attempt, 30));
    const delay = fixedDelay ?? Math.floor(random() * ceiling);
    this._attempt++;
    const reconnectAt = Date.now() + delay;
    this._setState(STATES.RECONNECTING, { ...info, attempt: this._attempt, delay, reconnectAt });
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._connect();
    }, delay);
  }

  /** Detach from the current socket and close it without waiting for its close event. */
  _drop(code, reason) {
    const ws = this._ws;
    this._ws = null;
    this._stopHeartbeat();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      if (ws.readyState === 0 && typeof ws.terminate === 'function') ws.terminate();
      else if (code !== 1000 && typeof ws.terminate === 'function') ws.terminate();
      else ws.close(code, reason);
    } catch {
      /* already closed */
    }
    this._failPending(new HiveError(`connection dropped (${reason}) before the reply`, { code: 'connection_lost' }), false);
  }

  _failPending(error, includeUnsent) {
    for (const [id, p] of this._pending) {
      if (!p.sent && !includeUnsent) continue;
      clearTimeout(p.timer);
      this._pending.delete(id);
      p.reject(error);
    }
    if (includeUnsent) this._outbox = [];
  }

  _startHeartbeat(ws) {
    this._stopHeartbeat();
    const { heartbeatInterval, heartbeatTimeout } = this.options;
    if (!(heartbeatInterval > 0)) return;
    this._hbTimer = setInterval(() => {
      if (this._ws !== ws || this._hbCheck) return;
      const sentAt = Date.now();
      let answered = false;
      this.send('ping', {}, { timeout: heartbeatTimeout + 1000 }).then(
        () => {
          answered = true;
        },
        () => {},
      );
      this._hbCheck = setTimeout(() => {
        this._hbCheck = null;
        if (this._ws !== ws || answered || this._lastRxAt > sentAt) return;
        // neither the pong nor any other frame: the connection is dead
        this.stats.heartbeatFailures++;
        this._drop(4000, 'heartbeat timeout');
        this._scheduleReconnect({ code: 4000, reason: `no pong within ${heartbeatTimeout} ms` });
      }, heartbeatTimeout);
    }, heartbeatInterval);
  }

  _stopHeartbeat() {
    clearInterval(this._hbTimer);
    clearTimeout(this._hbCheck);
    this._hbTimer = null;
    this._hbCheck = null;
  }

  _setState(state, info) {
    const changed = state !== this.state || state === STATES.RECONNECTING;
    this.state = state;
    this.stateInfo = info || {};
    if (!changed) return;
    for (const h of [...this._stateHandlers]) {
      try {
        h(state, this.stateInfo);
      } catch (err) {
        console.error('HiveClient: state handler failed', err);
      }
    }
  }
}
