// The dashboard's mirror (hivehub/dashboard/js/hive-state.js) folds the issue-13
// task events (approval, rejection, questions and answers, streamed output,
// usage) exactly as the hub's core does: a log made by the core itself
// (tests/js/core_log.py, through tests/core/_harness.Sim) is applied to an empty
// mirror, and every task must equal the core's on the fields the page shows.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { HiveState, addUsage } from '../../hivehub/dashboard/js/hive-state.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIELDS = ['status', 'output', 'usage', 'pending_input', 'last_input', 'approved_by', 'attempt', 'failures', 'cancelled_by', 'assigned_agent_id', 'progress', 'current_step'];

function coreLog() {
  const python = process.env.HIVE_PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
  const r = spawnSync(python, [path.join(ROOT, 'tests', 'js', 'core_log.py')], {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: ROOT },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('the mirror folds approvals, questions, output and usage as the core does', () => {
  const { events, tasks } = coreLog();
  const s = new HiveState();
  s.loadSnapshot({ sequence: 0, agents: [], tasks: [] });
  const seen = new Set();
  for (const ev of events) {
    s.apply(ev);
    seen.add(ev.type);
  }
  for (const type of ['task_approval_requested', 'task_approved', 'task_rejected', 'task_input_required', 'task_input_received']) {
    assert.ok(seen.has(type), `the log has a ${type}`);
  }
  assert.deepEqual([...s.tasks.keys()].sort(), Object.keys(tasks).sort());
  for (const [id, want] of Object.entries(tasks)) {
    const got = s.tasks.get(id);
    for (const f of FIELDS) assert.deepEqual(got[f] ?? null, want[f] ?? null, `task ${id}.${f}`);
  }
  assert.equal(s.tasks.get('t').output, 'Hello, world!\n');
  assert.equal(s.tasks.get('r').output, 'second try'); // the new attempt streamed its own
});

test('a question is open only while the task waits for input', () => {
  const s = new HiveState();
  s.loadSnapshot({ sequence: 0, agents: [], tasks: [{ id: 'q', type: 'x', status: 'running', created_at: '2024-01-01T00:00:00Z' }] });
  const at = '2024-01-01T00:00:01Z';
  s.apply({ type: 'task_input_required', sequence: 1, data: { timestamp: at, task_id: 'q', agent_id: 'a', attempt_number: 1, request_id: 'r1', question: '?', choices: ['a', 'b'], timeout_seconds: 9, deadline: at } });
  assert.equal(s.tasks.get('q').status, 'input_required');
  assert.deepEqual(s.tasks.get('q').pending_input.choices, ['a', 'b']);
  s.apply({ type: 'task_cancelled', sequence: 2, data: { timestamp: at, task_id: 'q', cancelled_by: 'ops', reason: 'x' } });
  assert.equal(s.tasks.get('q').pending_input, null);
});

test('usage sums over attempts; the cost is known only while every part is', () => {
  const a = { model: 'm', prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, cost_usd: 0.1 };
  assert.deepEqual(addUsage(null, a), a);
  assert.deepEqual(addUsage(a, { ...a, model: 'n', cost_usd: 0.2 }), { model: 'n', prompt_tokens: 2, completion_tokens: 4, total_tokens: 6, cost_usd: 0.3, prompt_tokens_source: null });
  assert.equal(addUsage(a, { ...a, cost_usd: null }).cost_usd, null);
  // the sum's prompt count is as certain as its least certain part (core/usage.py weakest_source)
  const counted = { ...a, prompt_tokens_source: 'tokenizer' };
  assert.equal(addUsage(counted, { ...a, prompt_tokens_source: 'server' }).prompt_tokens_source, 'tokenizer');
  assert.equal(addUsage(counted, { ...a, prompt_tokens_source: 'estimate' }).prompt_tokens_source, 'estimate');
  assert.equal(addUsage(counted, a).prompt_tokens_source, 'tokenizer');
});
