/**
 * A router on the haproxy engine in its own process, for the watchdog test:
 *   node --import tsx test/router/support-haproxy-router.ts <tcp port> <second tcp port> <echo backend addr>
 * Serves a TCP route on the first port and prints `ready`; a `reload` line on stdin adds the second
 * port (a reload) and prints `reloaded`.
 */
import { createInterface } from 'node:readline';
import { createDiscovery } from '../../src/discovery/index.js';
import { MemoryRouteSource, startRouter } from '../../src/router/index.js';

const [first, second, backend] = process.argv.slice(2);
const discovery = createDiscovery({ backend: 'memory' });
const routes = new MemoryRouteSource([{ id: 'a', type: 'tcp', port: Number(first), service: 'echo' }]);
const router = await startRouter({ discovery, routes, engine: 'haproxy', http: { host: '127.0.0.1', port: 0 } });
await discovery.register({ service: 'echo', addr: backend as string });
await router.settled();
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line !== 'reload') continue;
  routes.set({ id: 'b', type: 'tcp', port: Number(second), service: 'echo' });
  await router.settled();
  process.stdout.write('reloaded\n');
}
