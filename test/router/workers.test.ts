import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { get, startBackend, startRig, type Rig, type TestBackend } from './support.js';

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

  it('refuses workers on the haproxy engine in one line', async () => {
    await expect(startRig([], { engine: 'haproxy', workers: 2 })).rejects.toThrow('workers is an option of the node engine; the haproxy engine takes haproxy.threads');
  });
});
