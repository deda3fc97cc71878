/**
 * The router daemon (strowger). Maps flags/env to config, wires discovery + a route source into
 * `startRouter`, and closes gracefully on SIGINT/SIGTERM.
 *
 *   npx tsx examples/router/main.ts --demo
 *   curl -H 'Host: demo.localhost' http://127.0.0.1:8080/
 *
 * Flags (env in brackets):
 *   --http host:port      [ROUTER_HTTP]        default 127.0.0.1:8080
 *   --https host:port     [ROUTER_HTTPS]       off unless given
 *   --routes file.json    [ROUTER_ROUTES]      a JSON array of routes (HttpRoute | TcpRoute)
 *   --sticky-key secret   [ROUTER_STICKY_KEY]  HMAC key for sticky cookies (≥ 16 bytes)
 *   --demo                                     also start a hello backend on 127.0.0.2 behind demo.localhost
 *
 * Discovery is the in-process memory backend until the etcd backend is on main; then this becomes
 * `createDiscovery({ backend: 'etcd', endpoints })`. Routes come from a file until the controller's
 * HTTP route source exists.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createConsoleLogger } from '../../src/common/index.js';
import { createDiscovery } from '../../src/discovery/index.js';
import { MemoryRouteSource, startRouter, type ListenAddress, type Route } from '../../src/router/index.js';

function addr(value: string, flag: string): ListenAddress {
  const m = /^(.+):(\d+)$/.exec(value);
  if (!m) throw new Error(`${flag}: expected host:port, got ${value}`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

const { values } = parseArgs({
  options: {
    http: { type: 'string', default: process.env.ROUTER_HTTP ?? '127.0.0.1:8080' },
    https: { type: 'string', default: process.env.ROUTER_HTTPS },
    routes: { type: 'string', default: process.env.ROUTER_ROUTES },
    'sticky-key': { type: 'string', default: process.env.ROUTER_STICKY_KEY },
    demo: { type: 'boolean', default: false },
  },
});

const logger = createConsoleLogger({ level: 'info' });
const discovery = createDiscovery({ backend: 'memory' });
const routes = new MemoryRouteSource(values.routes ? (JSON.parse(readFileSync(values.routes, 'utf8')) as Route[]) : []);

const cleanups: (() => Promise<void>)[] = [];
if (values.demo) {
  const hello = createServer((req, res) => res.end(`hello from the demo backend, you asked for ${req.url} (${String(req.headers['x-request-id'])})\n`));
  await new Promise<void>((resolve) => hello.listen(0, '127.0.0.2', resolve));
  const reg = await discovery.register({ service: 'demo-web', addr: `127.0.0.2:${(hello.address() as AddressInfo).port}` });
  routes.set({ id: 'demo', type: 'http', domain: 'demo.localhost', service: 'demo-web' });
  cleanups.push(async () => {
    await reg.unregister();
    await new Promise<void>((resolve) => hello.close(() => resolve()));
  });
}

const router = await startRouter({
  discovery,
  routes,
  http: addr(values.http, '--http'),
  ...(values.https ? { https: addr(values.https, '--https') } : {}),
  ...(values['sticky-key'] ? { stickyKey: values['sticky-key'] } : {}),
  logger,
});
logger.info('routes', { routes: router.routes().map((r) => (r.type === 'http' ? `${r.domain}${r.path ?? '/'} -> ${r.service}` : `tcp:${r.port} -> ${r.service}`)) });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  logger.info('shutting down: finishing in-flight requests');
  await router.close();
  for (const cleanup of cleanups) await cleanup();
  await discovery.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
