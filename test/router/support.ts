import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
/** Real backend servers and a router on loopback, for the router suites. */
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createDiscovery, type Discovery, type DiscoveryConfig, type Registration, type ServiceEvent } from '../../src/discovery/index.js';
import { MemoryRouteSource, startRouter, type Route, type Router, type RouterOptions } from '../../src/router/index.js';
import { afterEach } from 'vitest';
import { etcdEndpoints, needEtcd } from '../support/services.js';

export interface TestBackend {
  name: string;
  server: Server;
  addr: string;
  /** Requests received so far. */
  hits: number;
  close(): Promise<void>;
}

/** A backend that answers `name` (or what `handler` writes) on `host`:0. */
export async function startBackend(name: string, host = '127.0.0.2', handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestBackend> {
  const backend: Partial<TestBackend> = { name, hits: 0 };
  const server = createServer((req, res) => {
    backend.hits = (backend.hits ?? 0) + 1;
    if (handler) return handler(req, res);
    res.setHeader('x-backend', name);
    res.end(JSON.stringify({ backend: name, url: req.url, headers: req.headers }));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  backend.server = server;
  backend.addr = `${host}:${(server.address() as AddressInfo).port}`;
  backend.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  return backend as TestBackend;
}

export interface GetResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request through the router with a chosen Host header (no connection reuse). */
export function get(url: string, host: string, options: { path?: string; headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<GetResult> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: options.path ?? '/', method: options.method ?? 'GET', headers: { host, ...options.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Write raw bytes to the router and read what comes back until it closes. */
export function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString()));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

export interface Rig {
  discovery: Discovery;
  routes: MemoryRouteSource;
  router: Router;
  register(service: string, addr: string): Promise<Registration>;
  close(): Promise<void>;
}

/** The discovery backends the live-backend suites run against: real etcd as well as memory. */
export const DISCOVERY_BACKENDS: { name: string; config: () => DiscoveryConfig; need: () => Promise<boolean> }[] = [
  { name: 'memory', config: () => ({ backend: 'memory' }), need: async () => true },
  {
    name: 'etcd',
    config: () => ({ backend: 'etcd', endpoints: etcdEndpoints, prefix: `/router-test-${randomUUID()}` }),
    need: () => needEtcd('router on etcd discovery'),
  },
];

/** The data planes the conformance suites run on (`ROUTER_ENGINES=node` narrows them). */
export const ENGINES = (process.env.ROUTER_ENGINES?.split(',') ?? (haproxyPresent() || process.env.CI === 'true' ? ['node', 'haproxy'] : ['node'])) as ('node' | 'haproxy')[];

/** Whether an haproxy binary runs here (in CI a missing one fails the haproxy suites instead of skipping them). */
function haproxyPresent(): boolean {
  return spawnSync('haproxy', ['-v']).status === 0;
}

/** {@link startRig} on one engine. */
export function rigFor(engine: 'node' | 'haproxy'): typeof startRig {
  return (routes, extra = {}, discoveryConfig) => startRig(routes, { engine, ...extra }, discoveryConfig);
}

/**
 * For a suite on one engine (call it inside `describe`): `oneRoute(domain)` starts a rig whose one
 * route `domain` leads to an `app` backend; `track(x)` and `later(fn)` add to what is closed after
 * each test, newest first.
 */
export function perTest(engine: 'node' | 'haproxy'): {
  later(fn: () => Promise<void>): void;
  track<T extends { close(): Promise<void> }>(x: T): T;
  oneRoute(domain: string, extra?: Partial<RouterOptions>): Promise<{ rig: Rig; backend: TestBackend }>;
} {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const later = (fn: () => Promise<void>) => void cleanup.push(fn);
  const track = <T extends { close(): Promise<void> }>(x: T): T => (later(() => x.close()), x);
  return {
    later,
    track,
    async oneRoute(domain, extra = {}) {
      const backend = track(await startBackend('app'));
      const rig = track(await startRig([{ id: 'app', type: 'http', domain, service: 'app-web' }], { engine, ...extra }));
      await rig.register('app-web', backend.addr);
      return { rig, backend };
    },
  };
}

/**
 * `discovery` as the router is handed it, noting what its watches have handed the router: the
 * router hears of a registration through its watch, which on etcd comes a moment after the
 * registration returns (and `settled()` covers route events, not backends).
 */
function watchedBy(discovery: Discovery): { discovery: Discovery; watching(service: string): boolean; delivered(service: string, id: string): boolean } {
  const open = new Map<string, number>();
  const delivered = new Set<string>();
  const note = (service: string, event: ServiceEvent) => {
    if (event.type === 'current') for (const i of event.instances) delivered.add(`${service} ${i.id}`);
    else if (event.type === 'up') delivered.add(`${service} ${event.instance.id}`);
  };
  return {
    watching: (service) => (open.get(service) ?? 0) > 0,
    delivered: (service, id) => delivered.has(`${service} ${id}`),
    discovery: {
      register: (options) => discovery.register(options),
      instances: (service) => discovery.instances(service),
      leader: (service) => discovery.leader(service),
      close: () => discovery.close(),
      [Symbol.asyncDispose]: () => discovery.close(),
      watch(service, options) {
        const inner = discovery.watch(service, options);
        open.set(service, (open.get(service) ?? 0) + 1);
        return {
          close: () => inner.close(),
          async *[Symbol.asyncIterator]() {
            try {
              for await (const event of inner) {
                yield event;
                // The router asks for the next event once it has applied this one.
                note(service, event);
              }
            } finally {
              open.set(service, (open.get(service) ?? 1) - 1);
            }
          },
        };
      },
    },
  };
}

/** Discovery (memory unless given) + memory routes + a router on 127.0.0.1:0. */
export async function startRig(routes: Route[], extra: Partial<RouterOptions> = {}, discoveryConfig: DiscoveryConfig = { backend: 'memory' }): Promise<Rig> {
  const discovery = createDiscovery(discoveryConfig);
  const watched = watchedBy(discovery);
  const source = new MemoryRouteSource(routes);
  const router = await startRouter({ discovery: watched.discovery, routes: source, http: { host: '127.0.0.1', port: 0 }, drainTimeoutMs: 3000, ...extra });
  const regs: Registration[] = [];
  return {
    discovery,
    routes: source,
    router,
    async register(service, addr) {
      const reg = await discovery.register({ service, addr });
      regs.push(reg);
      // A routed service: wait until the router's watch handed it the instance.
      if (watched.watching(service)) await until(() => watched.delivered(service, reg.instance.id));
      // The haproxy engine takes a Runtime API round trip or two to add the server.
      await router.settled();
      return reg;
    },
    async close() {
      await router.close();
      for (const reg of regs) await reg.unregister();
      await discovery.close();
    },
  };
}

/** Wait until `check` holds (polling), or fail after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
