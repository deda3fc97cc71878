import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, get, rigFor, startBackend, until, type Rig, type TestBackend } from './support.js';

describe.each(ENGINES)('router (%s engine): access log', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('writes one JSON line per request, routed or not', async () => {
    const lines: string[] = [];
    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { accessLog: { write: (line) => lines.push(line) } }));
    await rig.register('app-web', app.addr);
    const before = Date.now();
    await get(rig.router.http.url, 'app.test', { path: '/x?y=1', headers: { 'user-agent': 'test-agent' } });
    await get(rig.router.http.url, 'nope.test');
    await until(() => lines.length >= 2, 5000);
    const [hit, miss] = lines.map((l) => JSON.parse(l));
    expect(hit).toMatchObject({ method: 'GET', host: 'app.test', url: '/x?y=1', status: 200, service: 'app-web', userAgent: 'test-agent' });
    expect(hit.ts).toBeGreaterThanOrEqual(before - 1000);
    expect(hit.ms).toBeGreaterThanOrEqual(0);
    expect(miss).toMatchObject({ host: 'nope.test', status: 404 });
  });

  it('writes the combined format when asked', async () => {
    const lines: string[] = [];
    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { accessLog: { format: 'combined', write: (line) => lines.push(line) } }));
    await rig.register('app-web', app.addr);
    await get(rig.router.http.url, 'app.test', { path: '/page', headers: { 'user-agent': 'curl/8', referer: 'http://ref.test/' } });
    await until(() => lines.length >= 1, 5000);
    expect(lines[0]).toMatch(/^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \/page HTTP\/1\.1" 200 \d+ "http:\/\/ref\.test\/" "curl\/8"$/);
  });
});
