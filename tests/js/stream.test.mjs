// EventStream behaviour against a scripted fake WebSocket and a fake fetch:
// backoff with full jitter, resume URL, duplicate dropping, 1013 and 1008
// handling, heartbeat death, reply matching, outbox while disconnected.
// Deterministic and fast: no hub involved.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { EventStream, HiveClient, HiveError, STATES } from '../../clients/js/index.js';
import { waitFor } from './hub.mjs';

class FakeSocket {
  static instances = [];

  constructor(url) {
    this.url = new URL(url);
    this.sent = [];
    this.readyState = 0;
    this.closedWith = null;
    this.autoPong = false;
    FakeSocket.instances.push(this);
  }

  static reset() {
    FakeSocket.instances = [];
  }

  static last() {
    return FakeSocket.instances[FakeSocket.instances.length - 1];
  }

  send(text) {
    const msg = JSON.parse(text);
    this.sent.push(msg);
    if (this.autoPong && msg.type === 'ping') this.deliver({ type: 'pong', data: {}, message_id: msg.message_id });
  }

  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // --- server side
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }

  event(sequence, type = 'task_progress', data = {}) {
    this.deliver({ type, data, timestamp: new Date().toISOString(), message_id: `m${sequence}`, sequence });
  }

  serverClose(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function makeStream(options = {}, clientOptions = {}) {
  FakeSocket.reset();
  const client = new HiveClient({ url: 'http://hub.test:3001', WebSocket: FakeSocket, fetch: async () => new Response('{}'), ...clientOptions });
  return client.stream({ heartbeatInterval: 0, ...options });
}

const nextSocket = (n) => waitFor(() => FakeSocket.instances.length >= n && FakeSocket.instances[n - 1], { timeout: 2000, interval: 2, what: `socket #${n}` });

describe('EventStream (fake socket)', () => {
  test('URL carries filters, snapshot, then since; token as ?token=', async () => {
    const stream = makeStream({ snapshot: true, types: ['task_created', 'task_completed'], agentId: 'a1' }, { token: 's3cret' });
    const ws = await nextSocket(1);
    assert.equal(ws.url.protocol, 'ws:');
    assert.equal(ws.url.pathname, '/ws');
    assert.equal(ws.url.searchParams.get('snapshot'), '1');
    assert.equal(ws.url.searchParams.get('since'), null);
    assert.equal(ws.url.searchParams.get('types'), 'task_created,task_completed');
    assert.equal(ws.url.searchParams.get('agent_id'), 'a1');
    assert.equal(ws.url.searchParams.get('token'), 's3cret');
    ws.open();
    ws.deliver({ type: 'snapshot', data: { sequence: 41, agents: [], tasks: [], status: {} }, timestamp: new Date().toISOString(), message_id: null });
    assert.equal(stream.lastSequence, 41);
    ws.serverClose(1006);
    const ws2 = await nextSocket(2);
    assert.equal(ws2.url.searchParams.get('since'), '41');
    assert.equal(ws2.url.searchParams.get('snapshot'), null, 'no second snapshot: resume instead');
    stream.close();
  });

  test('resume drops duplicates (sequence <= last) and keeps order', async () => {
    const stream = makeStream({ since: 0, random: () => 0 });
    const seen = [];
    stream.on('*', (ev) => seen.push(ev.sequence));
    const ws = await nextSocket(1);
    assert.equal(ws.url.searchParams.get('since'), '0');
    ws.open();
    for (const s of [1, 2, 3]) ws.event(s);
    ws.serverClose(1006, 'network');
    const ws2 = await nextSocket(2);
    assert.equal(ws2.url.searchParams.get('since'), '3');
    ws2.open();
    for (const s of [2, 3, 4, 5]) ws2.event(s); // an overlapping replay
    ws2.deliver({ type: 'system_alert', data: { level: 'critical' }, timestamp: 'x', message_id: 'transient' }); // no sequence: always delivered
    assert.deepEqual(seen, [1, 2, 3, 4, 5, undefined]);
    assert.equal(stream.stats.duplicates, 2);
    assert.equal(stream.lastSequence, 5);
    stream.close();
  });

  test('backoff: exponential with full jitter, capped, reset once the hub serves', async () => {
    const rolls = [1, 1, 1, 1, 1, 0.5];
    let i = 0;
    const stream = makeStream({ since: 0, backoffBase: 4, backoffCap: 20, random: () => rolls[i++ % rolls.length] });
    const delays = [];
    stream.onState((s, info) => s === STATES.RECONNECTING && info.delay !== undefined && delays.push(info.delay));
    for (let n = 1; n <= 6; n++) (await nextSocket(n)).serverClose(1006); // never opens
    const ws7 = await nextSocket(7);
    // ceilings 4, 8, 16, 20 (cap), 20, 20; delay = floor(random * ceiling)
    assert.deepEqual(delays, [4, 8, 16, 20, 20, 10]);
    ws7.open();
    ws7.event(1); // a message: the hub is serving, the next failure starts over
    ws7.serverClose(1001, 'hub shutting down');
    await nextSocket(8);
    assert.equal(delays[delays.length - 1], 4);
    stream.close();
  });

  test('close 1013 reconnects with the since named in the reason', async () => {
    const stream = makeStream({ since: 0, random: () => 0 });
    const ws = await nextSocket(1);
    ws.open();
    for (const s of [1, 2, 3, 4, 5, 6]) ws.event(s);
    ws.serverClose(1013, 'slow consumer: resume with since=4');
    const ws2 = await nextSocket(2);
    assert.equal(ws2.url.searchParams.get('since'), '4');
    ws2.open();
    const seen = [];
    stream.on('*', (ev) => seen.push(ev.sequence));
    for (const s of [5, 6, 7]) ws2.event(s);
    assert.deepEqual(seen, [7]);
    ws2.serverClose(1006);
    const ws3 = await nextSocket(3);
    assert.equal(ws3.url.searchParams.get('since'), '7', 'the override is used once');
    stream.close();
  });

  test('close 1008 (refused) closes the stream with the reason as a HiveError', async () => {
    const stream = makeStream({ since: 0 });
    const ws = await nextSocket(1);
    ws.open();
    const p = stream.send('get_status');
    ws.serverClose(1008, 'unauthorized: a valid token is required');
    assert.equal(stream.state, STATES.CLOSED);
    assert.equal(stream.stateInfo.error.code, 'unauthorized');
    assert.equal(stream.stateInfo.error.message, 'a valid token is required');
    await assert.rejects(p, (err) => err instanceof HiveError);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(FakeSocket.instances.length, 1, 'no reconnect after 1008');
  });

  test('heartbeat: a ping every interval; no pong and no frame within the timeout -> reconnect', async () => {
    const stream = makeStream({ since: 0, heartbeatInterval: 25, heartbeatTimeout: 25, random: () => 0 });
    const ws = await nextSocket(1);
    ws.open();
    await waitFor(() => ws.sent.some((m) => m.type === 'ping'), { timeout: 2000, what: 'a ping' });
    const ws2 = await nextSocket(2);
    assert.ok(ws.closedWith, 'the dead socket was closed');
    assert.equal(stream.stats.heartbeatFailures, 1);
    // a healthy connection answers and is kept
    ws2.autoPong = true;
    ws2.open();
    await waitFor(() => ws2.sent.filter((m) => m.type === 'ping').length >= 3, { timeout: 2000, what: 'three pings' });
    assert.equal(FakeSocket.instances.length, 2);
    assert.equal(stream.stats.heartbeatFailures, 1);
    stream.close();
  });

  test('send(): replies matched by message_id; errors reject; queued while disconnected', async () => {
    const stream = makeStream({ since: 0, random: () => 0 });
    const queued = stream.send('get_status'); // not open yet: waits in the outbox
    const ws = await nextSocket(1);
    assert.equal(ws.sent.length, 0);
    ws.open();
    assert.equal(ws.sent.length, 1);
    const [a] = ws.sent;
    const second = stream.send('create_task', { type: 'x' });
    const b = ws.sent[1];
    assert.notEqual(a.message_id, b.message_id);
    // answer out of order; an event with its own message_id is not a reply
    ws.event(1, 'task_created', { task: { id: 't' } });
    ws.deliver({ type: 'error', data: { code: 'forbidden', message: 'role viewer may not create_task', details: { role: 'viewer' } }, message_id: b.message_id });
    ws.deliver({ type: 'get_status_result', data: { published_sequence: 9 }, message_id: a.message_id });
    assert.equal((await queued).data.published_sequence, 9);
    await assert.rejects(second, (err) => err instanceof HiveError && err.code === 'forbidden' && err.details.role === 'viewer');
    // a request in flight when the connection drops is rejected
    const lost = stream.send('ping');
    ws.serverClose(1006);
    await assert.rejects(lost, (err) => err.code === 'connection_lost');
    // timeout
    await assert.rejects(stream.send('ping', {}, { timeout: 20 }), (err) => err.code === 'timeout');
    stream.close();
  });

  test('subscribe() while disconnected changes the next URL', async () => {
    const stream = makeStream({ since: 0, random: () => 0 });
    const ws = await nextSocket(1);
    ws.serverClose(1006);
    const r = await stream.subscribe({ types: 'task_failed', taskId: 't9' });
    assert.equal(r.local, true);
    stream.connectNow();
    const ws2 = await nextSocket(2);
    assert.equal(ws2.url.searchParams.get('types'), 'task_failed');
    assert.equal(ws2.url.searchParams.get('task_id'), 't9');
    stream.close();
  });

  test('a live-only stream asks get_status once open for its position', async () => {
    const stream = makeStream({ random: () => 0 });
    const ws = await nextSocket(1);
    assert.equal(ws.url.searchParams.get('since'), null);
    ws.open();
    const ask = ws.sent.find((m) => m.type === 'get_status');
    assert.ok(ask);
    ws.event(7);
    ws.deliver({ type: 'get_status_result', data: { published_sequence: 8 }, message_id: ask.message_id });
    await waitFor(() => stream.lastSequence === 8, { timeout: 1000, what: 'baseline' });
    ws.serverClose(1006);
    assert.equal((await nextSocket(2)).url.searchParams.get('since'), '8');
    stream.close();
  });

  test('resync() forgets the position and asks for a new snapshot', async () => {
    const stream = makeStream({ snapshot: true, random: () => 0 });
    const ws = await nextSocket(1);
    ws.open();
    ws.deliver({ type: 'snapshot', data: { sequence: 5 }, message_id: null });
    ws.deliver({ type: 'error', data: { code: 'history_truncated', message: 'gone' }, message_id: null });
    stream.resync();
    const ws2 = await nextSocket(2);
    assert.equal(ws2.url.searchParams.get('snapshot'), '1');
    assert.equal(ws2.url.searchParams.get('since'), null);
    stream.close();
  });

  test('a hub whose log restarted below our position is detected: sequence_reset, then a fresh snapshot', async () => {
    const stream = makeStream({ snapshot: true, random: () => 0 });
    const errors = [];
    stream.on('error', (ev) => errors.push(ev.data));
    const ws = await nextSocket(1);
    ws.open();
    ws.deliver({ type: 'snapshot', data: { sequence: 50 }, message_id: null });
    ws.serverClose(1001, 'hub shutting down');
    const ws2 = await nextSocket(2);
    assert.equal(ws2.url.searchParams.get('since'), '50');
    ws2.open();
    const ask = ws2.sent.find((m) => m.type === 'get_status');
    assert.ok(ask, 'a resumed connection checks where the log ends');
    ws2.deliver({ type: 'get_status_result', data: { published_sequence: 2 }, message_id: ask.message_id });
    const ws3 = await nextSocket(3);
    assert.equal(errors[0].code, 'sequence_reset');
    assert.deepEqual(errors[0].details, { since: 50, published_sequence: 2 });
    assert.equal(ws3.url.searchParams.get('snapshot'), '1');
    stream.close();

    // without snapshots: replay the new log from its start
    const plain = makeStream({ since: 10, random: () => 0 });
    const p1 = await nextSocket(1);
    p1.open();
    const q = p1.sent.find((m) => m.type === 'get_status');
    p1.deliver({ type: 'get_status_result', data: { published_sequence: 3 }, message_id: q.message_id });
    assert.equal((await nextSocket(2)).url.searchParams.get('since'), '0');
    // a log that simply went on is left alone
    const p2 = FakeSocket.instances[1];
    p2.open();
    const q2 = p2.sent.find((m) => m.type === 'get_status');
    assert.equal(q2, undefined, 'since=0 needs no check');
    plain.close();
  });

  test('REST: Bearer header, JSON body, error shape -> HiveError', async () => {
    const calls = [];
    const fetch = async (url, init) => {
      calls.push({ url, init });
      if (url.endsWith('/api/tasks/missing')) {
        return new Response(JSON.stringify({ error: { code: 'task_not_found', message: 'no task missing', details: { task_id: 'missing' } } }), { status: 404 });
      }
      if (url.includes('/health')) return new Response(JSON.stringify({ status: 'unhealthy' }), { status: 503 });
      if (url.includes('/teapot')) return new Response('short and stout', { status: 418 });
      return new Response(JSON.stringify({ tasks: [{ id: 'a' }], next_cursor: 'abc' }), { status: 200 });
    };
    const client = new HiveClient({ url: 'https://hub.example/prefix/', token: 'tok', fetch });
    const page = await client.listTasks({ status: 'failed', agentId: 'ag', limit: 5 });
    assert.deepEqual(page.map((t) => t.id), ['a']);
    assert.equal(page.nextCursor, 'abc');
    assert.equal(calls[0].url, 'https://hub.example/prefix/api/tasks?status=failed&agent_id=ag&limit=5');
    assert.equal(calls[0].init.headers.Authorization, 'Bearer tok');
    assert.equal(client.wsUrl({ since: 3 }), 'wss://hub.example/prefix/ws?since=3&token=tok');
    await client.cancelTask('t 1', 'why');
    assert.equal(calls[1].url, 'https://hub.example/prefix/api/tasks/t%201/cancel');
    assert.equal(calls[1].init.method, 'POST');
    assert.deepEqual(JSON.parse(calls[1].init.body), { reason: 'why' });
    assert.equal(calls[1].init.headers['Content-Type'], 'application/json');
    await assert.rejects(client.getTask('missing'), (err) => {
      assert.ok(err instanceof HiveError);
      assert.deepEqual([err.code, err.status, err.message, err.details], ['task_not_found', 404, 'no task missing', { task_id: 'missing' }]);
      return true;
    });
    assert.equal((await client.health()).status, 'unhealthy', 'health answers 503 with a report');
    await assert.rejects(client.request('GET', '/teapot'), (err) => err.code === 'http_error' && err.status === 418 && err.message.includes('short and stout'));
  });

  test('constructor accepts ws:// URLs and a /ws suffix', () => {
    const c = new HiveClient({ url: 'ws://h:1/ws', fetch: () => {} });
    assert.equal(c.baseUrl, 'http://h:1');
    assert.equal(c.wsUrl(), 'ws://h:1/ws');
    assert.ok(new EventStream(c, { autoConnect: false }).state === STATES.CONNECTING);
  });
});
