import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, get, rigFor, startBackend, type Rig, type TestBackend } from './support.js';

describe.each(ENGINES)('router (%s engine): Prometheus metrics', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('serves request counts and latencies on the admin listener', async () => {
    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { metrics: { host: '127.0.0.1', port: 0 } }));
    await rig.register('app-web', app.addr);
    for (let i = 0; i < 3; i++) expect((await get(rig.router.http.url, 'app.test')).status).toBe(200);
    const url = rig.router.metrics?.url as string;
    const text = (await get(url, 'admin', { path: '/metrics' })).body;
    if (engine === 'node') {
      expect(text).toContain('flynn_router_requests_total{route="app",code="2xx"} 3');
      expect(text).toContain('flynn_router_request_duration_seconds_count{route="app"} 3');
    } else {
      // HAProxy's exporter, per slot backend: the route's slot answered 3 requests with 2xx.
      expect(text).toMatch(/haproxy_backend_http_responses_total\{proxy="p\d+",code="2xx"\} 3/);
    }
    expect((await get(url, 'admin', { path: '/' })).status).toBe(404);
  });
});
