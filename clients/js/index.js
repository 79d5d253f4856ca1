// @hivehub/client: the Hive Hub JavaScript client for Node.js and bundlers.
// The implementation is the same file the dashboard serves to browsers:
// hivehub/dashboard/js/hive-client.js. This entry point adds one thing: on
// Node.js without a global WebSocket (Node 20), it registers the `ws` package
// resolved from here, because a bare `import('ws')` inside the shared file
// resolves relative to that file's folder, not to this package.
import { setWebSocketImplementation } from '../../hivehub/dashboard/js/hive-client.js';

export * from '../../hivehub/dashboard/js/hive-client.js';

if (typeof globalThis.WebSocket !== 'function') {
  try {
    const mod = await import('ws');
    setWebSocketImplementation(mod.WebSocket || mod.default);
  } catch {
    // No `ws`: streams fail with HiveError code "no_websocket" unless given { WebSocket }.
  }
}
