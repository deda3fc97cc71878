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
 *   --engine node|haproxy [ROUTER_ENGINE]      the data plane (default node; haproxy needs HAProxy ≥ 2.6)
 *   --access-log json|combined [ROUTER_ACCESS_LOG]  one line per request, to stdout (off unless given)
 *   --access-log-file FILE [ROUTER_ACCESS_LOG_FILE] append it to FILE instead (0600; FILE.1 past 64 MiB; reopened on SIGHUP)
 *   --metrics-port N      [ROUTER_METRICS_PORT] Prometheus metrics at http://<http host>:N/metrics (0 = any free port)
 *   --demo                                     also start a hello backend on 127.0.0.2 behind demo.localhost
 *
 * Discovery is the in-process memory backend until the etcd backend is on main; then this becomes
 * `createDiscovery({ backend: 'etcd', endpoints })`. Routes come from a file until the controller's
 * HTTP route source exists.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConsoleLogger } from '../../src/common/index.js';
import { openLogFile } from '../../src/common/log-file.js';
import { createDiscovery } from '../../src/discovery/index.js';
import { MemoryRouteSource, startRouter, type ListenAddress, type Route } from '../../src/router/index.js';
import { listenFailure, parseCli } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'router',
  usage: 'node --import tsx examples/router/main.ts [flags]',
  summary: 'The router (strowger) alone: HTTP(S) virtual hosts and TCP routes from a JSON file, backends from discovery.',
  flags: {
    http: { type: 'string', value: 'HOST:PORT', env: 'ROUTER_HTTP', default: '127.0.0.1:8080', help: 'HTTP listen address (port 0 = any free port)' },
    https: { type: 'string', value: 'HOST:PORT', env: 'ROUTER_HTTPS', help: 'HTTPS listen address (off unless given)' },
    routes: { type: 'string', value: 'FILE', env: 'ROUTER_ROUTES', help: 'a JSON array of routes (HttpRoute | TcpRoute)' },
    'sticky-key': { type: 'string', value: 'SECRET', env: 'ROUTER_STICKY_KEY', help: 'HMAC key for sticky cookies (≥ 16 bytes)' },
    engine: { type: 'string', value: 'ENGINE', env: 'ROUTER_ENGINE', default: 'node', help: "the data plane: node (in this process) or haproxy (HAProxy ≥ 2.6 driven through its Runtime API)" },
    'access-log': { type: 'string', value: 'json|combined', env: 'ROUTER_ACCESS_LOG', help: 'one line per request, to stdout (off unless given)' },
    'access-log-file': { type: 'string', value: 'FILE', env: 'ROUTER_ACCESS_LOG_FILE', help: 'append the access log to FILE instead (mode 0600, moved to FILE.1 past 64 MiB, reopened on SIGHUP); turns it on' },
    'metrics-port': { type: 'string', value: 'N', env: 'ROUTER_METRICS_PORT', help: 'serve Prometheus metrics at http://<--http host>:N/metrics (0 = any free port; off unless given)' },
    demo: { type: 'boolean', help: 'also start a hello backend on 127.0.0.2 behind demo.localhost' },
  },
});
const { values } = cli;
function addr(value: string, flag: string): ListenAddress {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) return cli.fail(`--${flag} expects HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
const http = addr(values.http, 'http');
if (values.engine !== 'node' && values.engine !== 'haproxy') cli.fail(`--engine expects node or haproxy, got ${JSON.stringify(values.engine)}`);
const engine = values.engine as 'node' | 'haproxy';
const https = values.https ? addr(values.https, 'https') : undefined;
const accessLogFormat = values['access-log'] === undefined ? (values['access-log-file'] ? 'json' : undefined) : cli.oneOf('access-log', ['json', 'combined'] as const);
const metrics = values['metrics-port'] === undefined ? undefined : { host: http.host, port: cli.port('metrics-port') };
let initialRoutes: Route[] = [];
try {
  initialRoutes = values.routes ? (JSON.parse(readFileSync(values.routes, 'utf8')) as Route[]) : [];
} catch (err) {
  cli.fail(`--routes ${values.routes}: ${(err as Error).message}`);
}

const logger = createConsoleLogger({ level: 'info' });
const discovery = createDiscovery({ backend: 'memory' });
const routes = new MemoryRouteSource(initialRoutes);

const cleanups: (() => Promise<void>)[] = [];
const accessLogFile = values['access-log-file'] ? openLogFile(values['access-log-file']) : undefined;
if (accessLogFile) {
  process.on('SIGHUP', () => accessLogFile.reopen());
  cleanups.push(() => accessLogFile.close());
}
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
  http,
  engine,
  ...(https ? { https } : {}),
  ...(values['sticky-key'] ? { stickyKey: values['sticky-key'] } : {}),
  ...(accessLogFormat ? { accessLog: { format: accessLogFormat, ...(accessLogFile ? { write: accessLogFile.write } : {}) } } : {}),
  ...(metrics ? { metrics } : {}),
  logger,
}).catch(async (err: unknown) => {
  for (const cleanup of cleanups) await cleanup();
  await discovery.close();
  const flag = (err as Error).message.includes('for metrics') ? '--metrics-port N' : https ? '--http / --https HOST:PORT' : '--http HOST:PORT';
  console.error(`router: ${listenFailure(err, 'router', values.http, flag) ?? (err as Error).message}`);
  process.exit(1);
});
// Before the ready line: whoever waits for it may signal at once.
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
if (router.metrics) logger.info('metrics', { url: `${router.metrics.url}/metrics` });
logger.info('routes', { routes: router.routes().map((r) => (r.type === 'http' ? `${r.domain}${r.path ?? '/'} -> ${r.service}` : `tcp:${r.port} -> ${r.service}`)) });
