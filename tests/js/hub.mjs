// Start the real `hive serve` as a subprocess on a free port (the Node twin of tests/hubproc.py).
// Tests wait for conditions (waitFor), never for fixed sleeps.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TIME_SCALE = Number(process.env.HIVE_TEST_TIME_SCALE || '1');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Poll `pred` (sync or async) until it returns a truthy value; throws after `timeout` ms. */
export async function waitFor(pred, { timeout = 10_000, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout * TIME_SCALE;
  let lastErr = null;
  while (Date.now() < deadline) {
    try {
      const v = await pred();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${lastErr.message})` : ''}`);
}

/**
 * `startHub({demo, args, port, db})`: demo=false passes --no-demo (no demo agents, no
 * workload); db defaults to a fresh file ('memory' for an in-memory log).
 * Resolves once /health answers. `hub.stop()` sends SIGTERM (SIGKILL after 15 s).
 */
export async function startHub({ demo = false, args = [], port: fixedPort, db: dbArg } = {}) {
  const port = fixedPort || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hive-js-'));
  const db = dbArg || path.join(dir, 'hive.db');
  const logPath = path.join(dir, 'hub.log');
  const python = process.env.HIVE_PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
  const argv = ['-m', 'hivehub', 'serve', '--host', '127.0.0.1', '--port', String(port), '--db', db, ...(demo ? [] : ['--no-demo']), ...args];
  const log = fs.openSync(logPath, 'a');
  const proc = spawn(python, argv, { cwd: ROOT, stdio: ['ignore', log, log], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  fs.closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const logs = () => {
    try {
      return fs.readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`hub exited with ${proc.exitCode}: ${logs().slice(-3000)}`);
        try {
          const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
          await r.arrayBuffer();
          return r.status === 200 || r.status === 503;
        } catch {
          return false;
        }
      },
      { timeout: 20_000, what: `hub on port ${port} to answer /health` },
    );
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${err.message}\n--- hub log ---\n${logs().slice(-3000)}`);
  }
  return {
    url,
    port,
    db,
    dir,
    proc,
    logs,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Collect every event a stream delivers (`*`), for assertions. */
export function collect(stream) {
  const events = [];
  stream.on('*', (ev) => events.push(ev));
  return events;
}
