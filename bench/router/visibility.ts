/**
 * Change visibility: how long after a route is set (or a backend registered) the first request
 * through the router gets it, polling with a keep-alive client as fast as it answers.
 */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDiscovery } from '../../src/discovery/index.js';
import { MemoryRouteSource, startRouter } from '../../src/router/index.js';

function backend(name: string, host: string): Promise<{ addr: string; close(): void }> {
  const server = createServer((_req, res) => res.setHeader('x-backend', name).end(name));
  return new Promise((resolve) => server.listen(0, host, () => resolve({ addr: `${host}:${(server.address() as AddressInfo).port}`, close: () => server.close() })));
}

function probe(port: number, host: string, agent: Agent): Promise<{ status: number; backend: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, headers: { host }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function firstHit(port: number, host: string, agent: Agent, hit: (r: { status: number; backend: string }) => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!hit(await probe(port, host, agent))) if (Date.now() > end) throw new Error(`no hit on ${host} in 5 s`);
}

export interface Visibility {
  routeMs: number[];
  backendMs: number[];
}

/** `rounds` route additions and backend additions on one engine, each timed from the change to the first request that sees it. */
export async function measureVisibility(engine: 'node' | 'haproxy', rounds: number): Promise<Visibility> {
  const discovery = createDiscovery({ backend: 'memory' });
  const a = await backend('a', '127.0.0.2');
  const routes = new MemoryRouteSource();
  const router = await startRouter({ discovery, routes, http: { host: '127.0.0.1', port: 0 }, engine });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const out: Visibility = { routeMs: [], backendMs: [] };
  const extra: { close(): void }[] = [];
  try {
    await discovery.register({ service: 'a', addr: a.addr, ttlMs: 3_600_000 });
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      routes.set({ id: `r${i}`, type: 'http', domain: `r${i}.test`, service: 'a' });
      await firstHit(router.http.port, `r${i}.test`, agent, (r) => r.status === 200);
      out.routeMs.push(performance.now() - t0);
      const b = await backend(`b${i}`, '127.0.0.3');
      extra.push(b);
      const t1 = performance.now();
      const reg = await discovery.register({ service: 'a', addr: b.addr, ttlMs: 3_600_000 });
      await firstHit(router.http.port, `r${i}.test`, agent, (r) => r.backend === `b${i}`);
      out.backendMs.push(performance.now() - t1);
      await reg.unregister();
    }
  } finally {
    agent.destroy();
    await router.close();
    await discovery.close();
    a.close();
    for (const b of extra) b.close();
  }
  return out;
}
