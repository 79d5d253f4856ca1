// The dashboard's mirror (hivehub/dashboard/js/hive-state.js), fed by a
// snapshot and the live stream, must equal the hub's own projection
// (GET /api/agents, GET /api/tasks) at the same sequence, on a hub with the
// demo agents doing real work: completions, failures, cancels, retries,
// learning cycles.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { HiveClient } from '../../clients/js/index.js';
import { HiveState } from '../../hivehub/dashboard/js/hive-state.js';
import { startHub, waitFor } from './hub.mjs';

const TASK_FIELDS = ['status', 'type', 'priority', 'assigned_agent_id', 'attempt', 'failures', 'progress', 'current_step', 'result', 'error', 'assigned_at', 'started_at', 'completed_at', 'cancelled_by', 'next_retry_at', 'failed_agents'];
const AGENT_FIELDS = ['name', 'status', 'capabilities', 'max_concurrent_tasks', 'current_tasks'];
const METRIC_FIELDS = ['tasks_completed', 'tasks_failed', 'success_rate', 'average_response_time_ms', 'capability_improvements'];

let hub;
before(async () => {
  hub = await startHub({
    demo: true,
    args: ['--no-demo-workload', '--status-interval', '3600', '--resource-interval', '3600', '--learning-min-outcomes', '2', '--learning-interval', '0.5'],
  });
});
after(async () => hub?.stop());

function near(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) < 1e-6;
  return JSON.stringify(a) === JSON.stringify(b);
}

function diff(mirror, agents, tasks) {
  const out = [];
  const restAgents = new Map(agents.map((a) => [a.id, a]));
  assert.deepEqual([...mirror.agents.keys()].sort(), [...restAgents.keys()].sort(), 'same agents');
  for (const [id, a] of restAgents) {
    const m = mirror.agents.get(id);
    for (const f of AGENT_FIELDS) if (!near(m[f], a[f])) out.push(`agent ${a.name}.${f}: mirror ${JSON.stringify(m[f])} hub ${JSON.stringify(a[f])}`);
    for (const f of METRIC_FIELDS) if (!near(m.metrics[f], a.metrics[f])) out.push(`agent ${a.name}.metrics.${f}: mirror ${m.metrics[f]} hub ${a.metrics[f]}`);
  }
  for (const t of tasks) {
    const m = mirror.tasks.get(t.id);
    if (!m) {
      out.push(`task ${t.id} missing from the mirror`);
      continue;
    }
    for (const f of TASK_FIELDS) if (!near(m[f] ?? null, t[f] ?? null)) out.push(`task ${t.id}.${f}: mirror ${JSON.stringify(m[f])} hub ${JSON.stringify(t[f])}`);
  }
  return out;
}

test('the mirror folded from the stream equals the hub projection', { timeout: 120_000 }, async () => {
  const client = new HiveClient({ url: hub.url });
  await waitFor(async () => (await client.listAgents({ status: 'idle' })).length === 3, { timeout: 20_000, what: 'three demo agents online' });
  const mirror = new HiveState();
  const stream = client.stream({ snapshot: true });
  stream.on('snapshot', (ev) => mirror.loadSnapshot(ev.data));
  const seenTypes = new Map();
  stream.on('*', (ev) => {
    seenTypes.set(ev.type, (seenTypes.get(ev.type) || 0) + 1);
    if (ev.type !== 'snapshot') mirror.apply(ev);
  });
  try {
    await stream.ready();
    const text = (s) => ({ type: 'text_analysis', required_capabilities: [{ name: 'text_analysis', min_proficiency: 0.5 }], input: { text: s } });
    const specs = [
      text('The hive works well. Agents are fast and reliable.'),
      text('Terrible delays. Nothing worked today.'),
      { type: 'data_processing', required_capabilities: [{ name: 'data_processing', min_proficiency: 0.5 }], input: { operation: 'summarize', records: [{ a: 1 }, { a: 2 }, { a: 5 }] } },
      { type: 'math', required_capabilities: [{ name: 'math', min_proficiency: 0.3 }], input: { operation: 'factorize', numbers: [84, 97, 1001] } },
      text('Short one.'),
      text('Another fine day for the hive.'),
      { type: 'math', required_capabilities: [{ name: 'math', min_proficiency: 0.3 }], input: { operation: 'no_such_operation' }, max_retries: 1 },
    ];
    const made = [];
    for (const s of specs) made.push(await client.submitTask(s));
    // work nobody can do: pending, cancelled, retried, cancelled again
    const orphan = await client.submitTask({ type: 'poetry', required_capabilities: [{ name: 'poetry', min_proficiency: 0.9 }] });
    await client.cancelTask(orphan.id, 'nobody writes poems');
    await client.retryTask(orphan.id);
    await client.cancelTask(orphan.id);
    await waitFor(async () => {
      const all = await Promise.all(made.map((t) => client.getTask(t.id)));
      return all.every((t) => ['completed', 'failed', 'cancelled'].includes(t.status));
    }, { timeout: 60_000, what: 'every task finished' });

    // Compare at one sequence: the log must not move while the hub is read.
    let problems = null;
    await waitFor(
      async () => {
        const s1 = (await client.status()).published_sequence;
        const [agents, tasks] = await Promise.all([client.listAgents({ limit: 1000 }), client.listTasks({ limit: 1000 })]);
        const s2 = (await client.status()).published_sequence;
        if (s1 !== s2) return false;
        await waitFor(() => stream.lastSequence >= s2, { timeout: 5000, what: `mirror at ${s2}` });
        if (stream.lastSequence !== s2) return false;
        problems = diff(mirror, agents, tasks);
        return problems.length === 0;
      },
      { timeout: 30_000, interval: 200, what: 'a quiet moment where mirror and hub agree' },
    ).catch((err) => {
      throw new Error(`${err.message}\n${(problems || []).join('\n')}`);
    });
    assert.equal(mirror.sequence, stream.lastSequence);
    // the run covered the interesting transitions, not just happy completions
    for (const type of ['task_completed', 'task_failed', 'task_cancelled', 'task_retried', 'learning_cycle_completed', 'agent_status_changed']) {
      assert.ok(seenTypes.get(type) > 0, `no ${type} seen: ${JSON.stringify([...seenTypes])}`);
    }
    const done = [...mirror.tasks.values()].filter((t) => t.status === 'completed');
    assert.ok(done.length >= 5, `completed: ${done.length}`);
    assert.ok(done.every((t) => t.result !== null));
  } finally {
    stream.close();
  }
});
