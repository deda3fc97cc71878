import { afterEach, describe, expect, it } from 'vitest';
import { get, raw, startBackend, ENGINES, rigFor, type Rig, type TestBackend } from './support.js';

describe.each(ENGINES)('router (%s engine): protocol edges', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  async function rig(): Promise<{ rig: Rig; backend: TestBackend }> {
    const backend = track(await startBackend('app'));
    const r = track(await startRig([{ id: 'app', type: 'http', domain: 'app.example.com', service: 'app-web' }]));
    await r.register('app-web', backend.addr);
    return { rig: r, backend };
  }

  it('answers 400 to two Host headers, on plain requests and Upgrades, without asking a backend', async () => {
    const { rig: r, backend } = await rig();
    const plain = await raw(r.router.http.port, 'GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: other.example.com\r\nConnection: close\r\n\r\n');
    // HAProxy's parser refuses it with its own 400 page.
    expect(plain).toMatch(engine === 'node' ? /^HTTP\/1.1 400 Bad Request\r\n[\s\S]*400 Bad Request: more than one Host header\n$/ : /^HTTP\/1.1 400 Bad request\r\n/);
    const upgrade = await raw(r.router.http.port, 'GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    expect(upgrade).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/i);
    expect(backend.hits).toBe(0);
  });

  it('answers OPTIONS * itself with 200 and Allow', async () => {
    const { rig: r } = await rig();
    const answer = await raw(r.router.http.port, 'OPTIONS * HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    expect(answer.toLowerCase()).toContain('allow: get, head, post, put, patch, delete, options');
  });

  it('drops the headers Connection names, but never Host or the body framing', async () => {
    const { rig: r } = await rig();
    const res = await get(r.router.http.url, 'app.example.com', { headers: { connection: 'Host, X-Secret, Content-Length', 'x-secret': 'hop', 'x-kept': 'end' } });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body).headers;
    expect(seen.host).toBe('app.example.com');
    expect(seen['x-secret']).toBeUndefined();
    expect(seen['x-kept']).toBe('end');
  });

  it('appends a Forwarded element as it appends X-Forwarded-For', async () => {
    const { rig: r } = await rig();
    const fresh = JSON.parse((await get(r.router.http.url, 'app.example.com')).body).headers;
    expect(fresh.forwarded).toBe('for=127.0.0.1;proto=http;host=app.example.com');
    const chained = JSON.parse((await get(r.router.http.url, 'app.example.com:8080', { headers: { forwarded: 'for=192.0.2.43', 'x-forwarded-for': '192.0.2.43' } })).body).headers;
    expect(chained.forwarded).toBe('for=192.0.2.43, for=127.0.0.1;proto=http;host="app.example.com:8080"');
    expect(chained['x-forwarded-for']).toBe('192.0.2.43, 127.0.0.1');
  });
});
