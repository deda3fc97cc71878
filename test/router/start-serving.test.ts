import { createDiscovery } from '../../src/discovery/index.js';
import { describe, expect, it } from 'vitest';
import { MemoryRouteSource } from '../../src/router/route-source.js';
import { startRouter } from '../../src/router/router.js';
import { freePort } from '../../src/host/testing/jobs.js';
import { ENGINES, perTest, raw, startBackend } from './support.js';

describe.each(ENGINES)('router (%s engine): starting with routes', (engine) => {
  const { later, track } = perTest(engine);

  // A router started again (respawned, the machine restarted) with the routes and backends it had
  // must not answer 404 or 503 for them while it loads them: until it can route, it refuses.
  it('answers nothing but 200 from the first connection it accepts, for routes known at start', async () => {
    const backend = track(await startBackend('app'));
    const discovery = createDiscovery({ backend: 'memory' });
    later(() => discovery.close());
    const reg = await discovery.register({ service: 'app-web', addr: backend.addr });
    later(() => reg.unregister());
    const routes = [0, 1, 2, 3].map((i) => ({ id: `r${i}`, type: 'http' as const, domain: `app${i}.test`, service: 'app-web' }));
    const port = await freePort('127.0.0.1');

    const statuses: number[] = [];
    let starting = true;
    const knock = async () => {
      let i = 0;
      // Until the router has started, and 20 answers after.
      for (let after = 0; after < 20; i++) {
        const answer = await raw(port, `GET / HTTP/1.1\r\nHost: app${i % 4}.test\r\nConnection: close\r\n\r\n`).catch(() => undefined);
        if (answer !== undefined) statuses.push(Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1]));
        if (!starting && answer !== undefined) after++;
        // A refused connection comes back at once: a short pause leaves the CPU to the starting router.
        if (answer === undefined) await new Promise((r) => setTimeout(r, 1));
      }
    };
    const knocking = knock();
    const router = track(await startRouter({ engine, discovery, routes: new MemoryRouteSource(routes), http: { host: '127.0.0.1', port }, drainTimeoutMs: 1000 }));
    starting = false;
    await knocking;
    expect(router.http.port).toBe(port);
    expect(statuses.length).toBeGreaterThanOrEqual(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});
