import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { get, startBackend, startRig, until, type Rig, type TestBackend } from './support.js';

describe('router: node engine with workers', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('serves from several processes sharing the port, and every worker sees route and backend changes', async () => {
    const a = track(await startBackend('a'));
    const b = track(await startBackend('b', '127.0.0.3'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { workers: 2 }));
    await rig.register('app-web', a.addr);
    const children = spawnSync('pgrep', ['-P', String(process.pid), '-f', 'node-worker'], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(children).toHaveLength(2);
    for (let i = 0; i < 20; i++) expect((await get(rig.router.http.url, 'app.test')).status).toBe(200);
    // A new route and a new backend reach every worker before settled() resolves: 40 fresh connections all see them.
    rig.routes.set({ id: 'new', type: 'http', domain: 'new.test', service: 'new-web' });
    await rig.register('new-web', b.addr);
    const statuses = await Promise.all(Array.from({ length: 40 }, () => get(rig.router.http.url, 'new.test').then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    rig.routes.remove('new');
    await rig.router.settled();
    const gone = await Promise.all(Array.from({ length: 40 }, () => get(rig.router.http.url, 'new.test').then((r) => r.status)));
    expect(gone.every((s) => s === 404)).toBe(true);
  });

  it('writes one access log line per request with two workers, and serves metrics added up over the workers', async () => {
    const a = track(await startBackend('a'));
    const lines: string[] = [];
    const rig = track(
      await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { workers: 2, accessLog: { write: (line) => lines.push(line) }, metrics: { host: '127.0.0.1', port: 0 } }),
    );
    await rig.register('app-web', a.addr);
    // Fresh connections, several at once: the kernel spreads them over both workers.
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => get(rig.router.http.url, 'app.test', { path: `/n${i}` }).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect((await get(rig.router.http.url, 'nope.test')).status).toBe(404);
    await until(() => lines.length >= 41, 5000);
    const entries = lines.map((l) => JSON.parse(l) as { url: string; status: number; service?: string });
    expect(entries.filter((e) => e.status === 200 && e.service === 'app-web').map((e) => e.url).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `/n${i}`).sort());
    expect(entries.filter((e) => e.status === 404)).toHaveLength(1);
    const text = (await get(rig.router.metrics?.url as string, 'admin', { path: '/metrics' })).body;
    expect(text).toContain('flynn_router_requests_total{route="app",code="2xx"} 40');
    expect(text).toContain('flynn_router_request_duration_seconds_count{route="app"} 40');
    expect(text).toContain('flynn_router_requests_total{route="-",code="4xx"} 1');
    // No line is written twice or lost when the router closes.
    await rig.close();
    expect(lines).toHaveLength(41);
  });

  it('refuses workers on the haproxy engine in one line', async () => {
    await expect(startRig([], { engine: 'haproxy', workers: 2 })).rejects.toThrow('workers is an option of the node engine; the haproxy engine takes haproxy.threads');
  });
});
