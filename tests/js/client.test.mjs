// The JavaScript client against a real hub subprocess (no demo agents):
// REST helpers, HiveError, the stream (snapshot, live, resume without gap or
// duplicate, slow-consumer 1013), control commands with replies, filters,
// async iteration, and tokens (1008 refusal, Bearer on REST).
//   node --test tests/js/

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { EVENT_TYPES, HiveClient, HiveError, STATES } from '../../clients/js/index.js';
import { ROOT, collect, startHub, waitFor } from './hub.mjs';

const TEXT = { type: 'text_analysis', description: 'js client test', priority: 'high', required_capabilities: [{ name: 'text_analysis', min_proficiency: 0.5 }], input: { text: 'Hive Hub routes tasks.' } };

/** Sequences of logged events must run without a gap or a repeat from `from` + 1. */
function assertContiguous(events, from) {
  const seqs = events.filter((e) => typeof e.sequence === 'number' && e.sequence > 0).map((e) => e.sequence);
  assert.equal(new Set(seqs).size, seqs.length, `duplicate sequences: ${seqs}`);
  seqs.forEach((s, i) => assert.equal(s, from + 1 + i, `gap or reorder at index ${i}: ${seqs.slice(Math.max(0, i - 3), i + 3)}`));
  return seqs;
}

describe('HiveClient on a real hub', { timeout: 120_000 }, () => {
  let hub;
  let client;

  before(async () => {
    hub = await startHub();
    client = new HiveClient({ url: hub.url });
  });

  after(async () => {
    await hub?.stop();
  });

  test('REST helpers and HiveError', async () => {
    const task = await client.submitTask(TEXT);
    assert.equal(task.type, 'text_analysis');
    assert.equal(task.status, 'pending'); // no agents
    assert.equal(task.priority, 3);
    assert.deepEqual((await client.getTask(task.id)).input, TEXT.input);
    const listed = await client.listTasks({ type: 'text_analysis', limit: 10 });
    assert.ok(listed.some((t) => t.id === task.id));
    assert.equal(listed.nextCursor, null);

    const cancelled = await client.cancelTask(task.id, 'test says so');
    assert.equal(cancelled.status, 'cancelled');
    const retried = await client.retryTask(task.id);
    assert.equal(retried.status, 'pending');

    // 404 -> HiveError with the hub's code, status and details
    await assert.rejects(client.getTask('no-such-task'), (err) => {
      assert.ok(err instanceof HiveError);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'task_not_found');
      assert.equal(err.details.task_id, 'no-such-task');
      return true;
    });
    await assert.rejects(client.getAgent('nobody'), (err) => err instanceof HiveError && err.status === 404);
    await assert.rejects(client.removeAgent('nobody'), (err) => err instanceof HiveError && err.status === 404);
    // validation -> 422
    await assert.rejects(client.submitTask({ type: 'x', priority: 9 }), (err) => err instanceof HiveError && err.status === 422 && err.code === 'invalid_input');
    // conflict -> 409 (cancelling a finished task)
    await client.cancelTask(task.id);
    await assert.rejects(client.cancelTask(task.id), (err) => err instanceof HiveError && err.status === 409);

    // agents, status, health, alerts, modules
    const agent = await client.createAgent({ name: 'JsAgent', capabilities: [{ name: 'js', proficiency: 0.7 }] });
    assert.equal((await client.getAgent(agent.id)).name, 'JsAgent');
    assert.ok((await client.listAgents()).some((a) => a.id === agent.id));
    const all = [];
    for await (const a of client.iterAgents({ limit: 1 })) all.push(a.id);
    assert.ok(all.includes(agent.id));
    const removed = await client.removeAgent(agent.id);
    assert.equal(removed.agent_id, agent.id);
    const status = await client.status();
    assert.ok(Number.isInteger(status.published_sequence));
    assert.ok(['healthy', 'degraded', 'unhealthy'].includes((await client.health()).status));
    assert.ok(Array.isArray(await client.alerts()));
    assert.ok('persistence' in (await client.modules()).modules);
    const page = await client.events({ since: 0, types: ['task_created'] });
    assert.ok(page.events.every((e) => e.type === 'task_created'));
    // EVENT_TYPES matches the hub's list (its 422 for an unknown type names them all)
    await assert.rejects(client.events({ types: 'no_such_type' }), (err) => {
      assert.equal(err.status, 422);
      assert.deepEqual(err.details.known, [...EVENT_TYPES].sort());
      return true;
    });

    // network failure -> HiveError network_error
    const dead = new HiveClient({ url: 'http://127.0.0.1:9', timeout: 3000 });
    await assert.rejects(dead.status(), (err) => err instanceof HiveError && ['network_error', 'timeout'].includes(err.code) && err.status === 0);
  });

  test('snapshot, then task_created over the stream for a task submitted over REST', async () => {
    const stream = client.stream({ snapshot: true });
    const events = collect(stream);
    try {
      const snap = await waitFor(() => events.find((e) => e.type === 'snapshot'), { what: 'snapshot' });
      assert.equal(events[0].type, 'snapshot');
      assert.ok(Number.isInteger(snap.data.sequence));
      assert.ok(Array.isArray(snap.data.agents) && Array.isArray(snap.data.tasks));
      assert.ok(snap.data.status.metrics);
      assert.equal(stream.lastSequence, snap.data.sequence);
      assert.equal(stream.state, STATES.OPEN);

      const task = await client.submitTask(TEXT);
      const created = await waitFor(() => events.find((e) => e.type === 'task_created' && e.data.task.id === task.id), { what: 'task_created' });
      assert.equal(created.data.task.description, 'js client test');
      for (const key of ['type', 'data', 'timestamp', 'message_id', 'sequence']) assert.ok(key in created, key);
      assert.equal(created.sequence, stream.lastSequence);
      assertContiguous(events, snap.data.sequence);
    } finally {
      stream.close();
    }
    assert.equal(stream.state, STATES.CLOSED);
  });

  test('disconnect and reconnect with since: nothing missed, nothing twice', async () => {
    const stream = client.stream({ snapshot: true });
    const events = collect(stream);
    const states = [];
    stream.onState((s, info) => states.push([s, info]));
    try {
      await waitFor(() => events.find((e) => e.type === 'snapshot'), { what: 'snapshot' });
      const start = stream.lastSequence;
      const first = await client.submitTask(TEXT);
      await waitFor(() => events.find((e) => e.data?.task?.id === first.id), { what: 'first task_created' });

      // Drop the socket; while it is down, five more tasks are created.
      stream.reconnect({ delay: 60_000 });
      assert.equal(stream.state, STATES.RECONNECTING);
      const before = events.length;
      const missed = [];
      for (let i = 0; i < 5; i++) missed.push((await client.submitTask({ ...TEXT, description: `missed ${i}` })).id);
      assert.equal(events.length, before, 'nothing arrives while disconnected');

      const resumeFrom = stream.lastSequence;
      stream.connectNow(); // rather than in 60 s
      await waitFor(() => missed.every((id) => events.some((e) => e.type === 'task_created' && e.data.task.id === id)), { what: 'the missed task_created events' });
      assert.ok(states.some(([s, info]) => s === STATES.RECONNECTING && info.delay === 60_000));
      assert.equal(stream.stats.reconnects, 1);
      assert.equal(stream.stats.duplicates, 0);

      // One more live event after the replay, then compare with the log itself.
      const last = await client.submitTask({ ...TEXT, description: 'after' });
      await waitFor(() => events.some((e) => e.data?.task?.id === last.id), { what: 'live event after replay' });
      const seqs = assertContiguous(events, start);
      const log = await client.events({ since: start, limit: 10_000 });
      const logSeqs = log.events.map((e) => e.sequence).filter((s) => s <= seqs[seqs.length - 1]);
      assert.deepEqual(seqs, logSeqs, 'the stream delivered exactly the log');
      assert.ok(seqs.includes(resumeFrom + 1), 'replay started right after the last sequence seen');
    } finally {
      stream.close();
    }
  });

  test('a live-only stream learns its position and resumes too', async () => {
    const stream = client.stream({ types: ['task_created'] });
    const events = collect(stream);
    try {
      await stream.ready();
      await waitFor(() => stream.lastSequence !== null, { what: 'baseline from get_status' });
      const a = await client.submitTask({ ...TEXT, description: 'live a' });
      await waitFor(() => events.some((e) => e.data.task.id === a.id), { what: 'live a' });
      stream.reconnect({ delay: 60_000 });
      const b = await client.submitTask({ ...TEXT, description: 'live b' });
      stream.connectNow();
      await waitFor(() => events.some((e) => e.data.task.id === b.id), { what: 'live b (replayed)' });
      assert.ok(events.every((e) => e.type === 'task_created'));
      assert.equal(new Set(events.map((e) => e.sequence)).size, events.length);
    } finally {
      stream.close();
    }
  });

  test('control commands: send() resolves with the reply carrying the same message_id', async () => {
    const stream = client.stream({ types: ['task_cancelled'] });
    const events = collect(stream);
    try {
      const pong = await stream.send('ping');
      assert.equal(pong.type, 'pong');
      assert.ok(pong.message_id.startsWith(stream._idPrefix));

      const status = await stream.send('get_status');
      assert.equal(status.type, 'get_status_result');
      assert.ok(Number.isInteger(status.data.published_sequence));

      const created = await stream.send('create_task', { type: 'ws_made', description: 'via send()' });
      assert.equal(created.type, 'create_task_result');
      assert.equal(created.data.task.type, 'ws_made');
      const id = created.data.task.id;
      assert.equal((await client.getTask(id)).description, 'via send()');

      const cancelled = await stream.send('cancel_task', { task_id: id, reason: 'done testing' });
      assert.equal(cancelled.type, 'cancel_task_result');
      assert.equal(cancelled.data.task.status, 'cancelled');
      await waitFor(() => events.some((e) => e.type === 'task_cancelled' && e.data.task_id === id), { what: 'task_cancelled event' });

      // concurrent requests are matched by message_id, not by order
      const replies = await Promise.all([stream.send('ping'), stream.send('get_status'), stream.send('ping')]);
      assert.deepEqual(replies.map((r) => r.type), ['pong', 'get_status_result', 'pong']);
      assert.equal(new Set(replies.map((r) => r.message_id)).size, 3);

      // an error reply rejects with HiveError
      await assert.rejects(stream.send('no_such_command'), (err) => err instanceof HiveError && err.code === 'unknown_message_type');
      await assert.rejects(stream.send('cancel_task', { task_id: 'nope' }), (err) => err instanceof HiveError && err.code === 'task_not_found');

      // subscribe() changes the filters live
      const sub = await stream.subscribe({ types: ['task_created'] });
      assert.equal(sub.type, 'subscribed');
      assert.deepEqual(sub.data.types, ['task_created']);
      const t = await client.submitTask({ type: 'after_subscribe' });
      await waitFor(() => events.some((e) => e.type === 'task_created' && e.data.task.id === t.id), { what: 'task_created after subscribe' });
    } finally {
      stream.close();
    }
    await assert.rejects(stream.send('ping'), (err) => err.code === 'closed');
  });

  test('async iteration yields events in order; leaving the loop closes the stream', async () => {
    const stream = client.stream({ snapshot: true, types: ['task_created'] });
    const want = [];
    const got = [];
    const consumer = (async () => {
      for await (const ev of stream) {
        got.push(ev);
        if (ev.type === 'task_created' && ev.data.task.description === 'iter 2') break;
      }
    })();
    await stream.ready();
    await waitFor(() => got.length >= 1, { what: 'snapshot via iteration' });
    for (let i = 0; i < 3; i++) want.push((await client.submitTask({ type: 'iter', description: `iter ${i}` })).id);
    await consumer;
    assert.equal(got[0].type, 'snapshot');
    assert.deepEqual(got.slice(1).map((e) => e.data.task.id), want);
    assert.equal(stream.state, STATES.CLOSED);
  });

  test('filters by task id: replay of one task history', async () => {
    const t = await client.submitTask({ type: 'history' });
    await client.cancelTask(t.id);
    await client.retryTask(t.id);
    const stream = client.stream({ taskId: t.id, since: 0 });
    const events = collect(stream);
    try {
      await waitFor(() => events.length >= 3, { what: 'task history' });
      assert.deepEqual(events.map((e) => e.type), ['task_created', 'task_cancelled', 'task_retried']);
    } finally {
      stream.close();
    }
  });
});

describe('slow consumer: close 1013 and resume from the reason', { timeout: 120_000 }, () => {
  let hub;
  before(async () => {
    hub = await startHub({ args: ['--subscriber-buffer', '3', '--status-interval', '3600'] });
  });
  after(async () => hub?.stop());

  test('the stream reconnects with since=N from the reason and misses nothing', async () => {
    const client = new HiveClient({ url: hub.url });
    const stream = client.stream({ snapshot: true, backoffBase: 20, backoffCap: 200 });
    const events = collect(stream);
    const closes = [];
    stream.onState((s, info) => {
      if (s === STATES.RECONNECTING && info.code) closes.push(info);
    });
    try {
      await waitFor(() => events.find((e) => e.type === 'snapshot'), { what: 'snapshot' });
      const start = stream.lastSequence;
      // The consumer stops reading (its socket is paused): once the kernel's and the
      // hub's buffers toward it are full, the hub queues, passes the buffer of 3 and
      // closes with 1013. Big inputs fill the buffers in a few requests; random, so
      // permessage-deflate (which the ws package negotiates) cannot shrink them.
      const sock = stream._ws && stream._ws._socket;
      assert.ok(sock, 'expected the ws package socket (Node.js)');
      sock.pause();
      const ids = [];
      const big = () => randomBytes(37_500).toString('base64'); // 50,000 characters
      for (let round = 0; round < 12; round++) {
        const made = await Promise.all(Array.from({ length: 20 }, (_, i) => client.submitTask({ type: 'burst', description: `burst ${round}.${i}`, input: { pad: big() } })));
        ids.push(...made.map((t) => t.id));
      }
      sock.resume();
      await waitFor(() => closes.some((c) => c.code === 1013 && /since=\d+/.test(c.reason)), {
        timeout: 30_000,
        what: `a 1013 close naming since=N (got ${JSON.stringify(closes)})`,
      });
      await waitFor(() => ids.every((id) => events.some((e) => e.type === 'task_created' && e.data.task.id === id)), {
        timeout: 30_000,
        what: 'every task_created after the slow-consumer closes',
      });
      assertContiguous(events, start);
    } finally {
      stream.close();
    }
  });
});

describe('hub restarted on a fresh log', { timeout: 120_000 }, () => {
  test('the stream notices the sequence went back and starts over from a new snapshot', async () => {
    let hub = await startHub({ db: 'memory' });
    const port = hub.port;
    const client = new HiveClient({ url: hub.url });
    const stream = client.stream({ snapshot: true, backoffBase: 50, backoffCap: 300 });
    const events = collect(stream);
    try {
      await waitFor(() => events.find((e) => e.type === 'snapshot'), { what: 'snapshot' });
      for (let i = 0; i < 5; i++) await client.submitTask({ type: 'before' });
      await waitFor(() => events.filter((e) => e.type === 'task_created').length === 5, { what: 'five task_created' });
      const reached = stream.lastSequence;
      await hub.stop();
      hub = await startHub({ db: 'memory', port });
      const fresh = await client.submitTask({ type: 'after' });
      await waitFor(() => events.some((e) => e.type === 'error' && e.data.code === 'sequence_reset'), { timeout: 20_000, what: 'sequence_reset' });
      const snaps = () => events.filter((e) => e.type === 'snapshot');
      await waitFor(() => snaps().length === 2, { what: 'a second snapshot' });
      const second = snaps()[1];
      assert.ok(second.data.sequence < reached);
      // the task submitted after the restart is in the new snapshot, or (when the
      // stream resynced before it was submitted) arrives live after it
      await waitFor(
        () =>
          second.data.tasks.some((t) => t.id === fresh.id) ||
          events.some((e) => e.type === 'task_created' && e.data.task.id === fresh.id && e.sequence > second.data.sequence),
        { what: 'the task made after the restart' },
      );
      const later = await client.submitTask({ type: 'after' });
      await waitFor(() => events.some((e) => e.type === 'task_created' && e.data.task.id === later.id), { what: 'live after the reset' });
    } finally {
      stream.close();
      await hub.stop();
    }
  });
});

describe('tokens', { timeout: 120_000 }, () => {
  let hub;
  let admin;
  before(async () => {
    admin = 'js-admin-secret';
    hub = await startHub({ args: ['--admin-token', admin] });
  });
  after(async () => hub?.stop());

  test('REST sends Bearer; /ws sends ?token=; a refused stream closes with the reason', async () => {
    const anon = new HiveClient({ url: hub.url });
    await assert.rejects(anon.listTasks(), (err) => err instanceof HiveError && err.status === 401 && err.code === 'unauthorized');
    const refused = anon.stream({ snapshot: true });
    const closed = await new Promise((resolve) => refused.onState((s, info) => s === STATES.CLOSED && resolve(info)));
    assert.equal(closed.code, 1008);
    assert.equal(closed.error.code, 'unauthorized');
    await assert.rejects(refused.ready(), (err) => err.code === 'closed' || err.code === 'unauthorized');

    const client = new HiveClient({ url: hub.url, token: admin });
    assert.ok(client.wsUrl().includes(`token=${admin}`));
    const t = await client.submitTask({ type: 'secured' });
    const stream = client.stream({ snapshot: true });
    try {
      const snap = await new Promise((resolve) => stream.on('snapshot', resolve));
      assert.ok(snap.data.tasks.some((x) => x.id === t.id));
    } finally {
      stream.close();
    }
  });
});

test('the package entry point resolves and exports the client', () => {
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', "import * as m from '@hivehub/client'; console.log(Object.keys(m).sort().join(','))"], {
    cwd: path.join(ROOT, 'clients', 'js'),
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  for (const name of ['HiveClient', 'HiveError', 'EventStream', 'STATES']) assert.ok(out.stdout.includes(name), out.stdout);
});
