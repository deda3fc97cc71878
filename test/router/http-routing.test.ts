import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, get, rigFor, startBackend, until, type Rig, type TestBackend } from './support.js';

describe.each(ENGINES)('router (%s engine): HTTP routing', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('routes by exact host, wildcard host and longest path prefix', async () => {
    const app = track(await startBackend('app'));
    const api = track(await startBackend('api', '127.0.0.3'));
    const wild = track(await startBackend('wild', '127.0.0.4'));
    const rig = track(
      await startRig([
        { id: 'app', type: 'http', domain: 'app.example.com', service: 'app-web' },
        { id: 'api', type: 'http', domain: 'app.example.com', path: '/api', service: 'api-web' },
        { id: 'wild', type: 'http', domain: '*.example.com', service: 'wild-web' },
      ]),
    );
    await rig.register('app-web', app.addr);
    await rig.register('api-web', api.addr);
    await rig.register('wild-web', wild.addr);
    const url = rig.router.http.url;
    const backendOf = async (host: string, path: string) => JSON.parse((await get(url, host, { path })).body).backend;
    expect(await backendOf('app.example.com', '/')).toBe('app');
    expect(await backendOf('APP.example.com:80', '/x')).toBe('app');
    expect(await backendOf('app.example.com', '/api')).toBe('api');
    expect(await backendOf('app.example.com', '/api/v1?q=1')).toBe('api');
    expect(await backendOf('app.example.com', '/apix')).toBe('app');
    expect(await backendOf('other.example.com', '/api')).toBe('wild');
    expect(await backendOf('a.b.example.com', '/')).toBe('wild');
  });

  it('answers 404 with a short body for an unknown host', async () => {
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.example.com', service: 'app-web' }]));
    const res = await get(rig.router.http.url, 'nope.example.org');
    expect(res.status).toBe(404);
    expect(res.body).toBe('404 Not Found: no route for nope.example.org\n');
  });

  it('answers 400 to a request it cannot parse', async () => {
    const rig = track(await startRig([]));
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(rig.router.http.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let out = '';
      socket.on('data', (c: Buffer) => (out += c.toString()));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });
    // HAProxy's parser answers with its own 400 page (docs/router.md#engines).
    if (engine === 'haproxy') expect(answer).toMatch(/^HTTP\/1.1 400 Bad request\r\n/);
    else expect(answer).toMatch(/^HTTP\/1.1 400 Bad Request\r\n[\s\S]*\r\n\r\n400 Bad Request: bad request\n$/);
  });

  it('answers 503 when the route has no live backend', async () => {
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.example.com', service: 'app-web' }]));
    const res = await get(rig.router.http.url, 'app.example.com');
    expect(res.status).toBe(503);
    expect(res.body).toContain('no live backend for app-web');
  });

  it('answers 502 when the backend fails before answering, and cuts the client off when it fails mid-response', async () => {
    const dies = track(await startBackend('dies', '127.0.0.2', (req) => req.socket.destroy()));
    const half = track(
      await startBackend('half', '127.0.0.3', (_req, res) => {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 20);
      }),
    );
    const rig = track(
      await startRig([
        { id: 'dies', type: 'http', domain: 'dies.test', service: 'dies' },
        { id: 'half', type: 'http', domain: 'half.test', service: 'half' },
      ]),
    );
    await rig.register('dies', dies.addr);
    await rig.register('half', half.addr);
    const res = await get(rig.router.http.url, 'dies.test');
    expect(res.status).toBe(502);
    expect(res.body).toMatch(/^502 Bad Gateway: backend .* failed before answering\n$/);
    const withBody = await get(rig.router.http.url, 'dies.test', { method: 'POST', body: 'x', headers: { 'content-length': '1' } });
    expect(withBody.status).toBe(502);
    await expect(get(rig.router.http.url, 'half.test')).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('sets X-Forwarded-*, X-Request-Start and X-Request-Id, keeping a valid incoming id', async () => {
    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.example.com', service: 'app-web' }]));
    await rig.register('app-web', app.addr);
    const before = Date.now();
    const seen = JSON.parse((await get(rig.router.http.url, 'app.example.com', { headers: { 'x-forwarded-for': '10.0.0.1', connection: 'keep-alive, x-secret', 'x-secret': 'hop' } })).body).headers;
    expect(seen['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-port']).toBe(String(rig.router.http.port));
    expect(seen.host).toBe('app.example.com');
    expect(seen['x-secret']).toBeUndefined();
    const start = Number(/^t=(\d+)$/.exec(seen['x-request-start'])?.[1]);
    expect(start).toBeGreaterThanOrEqual(before);
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const kept = JSON.parse((await get(rig.router.http.url, 'app.example.com', { headers: { 'x-request-id': 'client-chosen-id-0123456789' } })).body).headers;
    expect(kept['x-request-id']).toBe('client-chosen-id-0123456789');
    const replaced = JSON.parse((await get(rig.router.http.url, 'app.example.com', { headers: { 'x-request-id': 'bad id!' } })).body).headers;
    expect(replaced['x-request-id']).not.toBe('bad id!');
  });

  it('proxies request bodies and keeps connections to the backend alive', async () => {
    const sockets = new Set<unknown>();
    const echo = track(
      await startBackend('echo', '127.0.0.2', (req, res) => {
        sockets.add(req.socket);
        req.pipe(res);
      }),
    );
    const rig = track(await startRig([{ id: 'echo', type: 'http', domain: 'echo.test', service: 'echo' }]));
    await rig.register('echo', echo.addr);
    const body = 'x'.repeat(100_000);
    for (let i = 0; i < 5; i++) {
      const res = await get(rig.router.http.url, 'echo.test', { method: 'POST', body, headers: { 'content-length': String(body.length) } });
      expect(res.body).toBe(body);
    }
    expect(sockets.size).toBe(1);
  });

  it('cancels the backend request when the client goes away before the answer', async () => {
    let backendSawClose = false;
    const hang = track(
      await startBackend('hang', '127.0.0.2', (req) => {
        req.socket.once('close', () => (backendSawClose = true));
      }),
    );
    const rig = track(await startRig([{ id: 'hang', type: 'http', domain: 'hang.test', service: 'hang' }]));
    await rig.register('hang', hang.addr);
    const { request } = await import('node:http');
    const u = new URL(rig.router.http.url);
    const req = request({ host: u.hostname, port: u.port, headers: { host: 'hang.test' }, agent: false });
    req.on('error', () => {});
    req.end();
    // inFlight() counts the node engine's requests only (HAProxy keeps its own counts).
    await until(() => hang.hits === 1 && (engine === 'haproxy' || rig.router.inFlight() === 1));
    req.destroy();
    await until(() => backendSawClose && rig.router.inFlight() === 0);
  });

  it('applies route changes at once, without a restart', async () => {
    const a = track(await startBackend('a'));
    const b = track(await startBackend('b', '127.0.0.3'));
    const rig = track(await startRig([]));
    await rig.register('svc-a', a.addr);
    await rig.register('svc-b', b.addr);
    expect((await get(rig.router.http.url, 'live.test')).status).toBe(404);
    rig.routes.set({ id: 'live', type: 'http', domain: 'live.test', service: 'svc-a' });
    await rig.router.settled();
    expect(JSON.parse((await get(rig.router.http.url, 'live.test')).body).backend).toBe('a');
    rig.routes.set({ id: 'live', type: 'http', domain: 'live.test', service: 'svc-b' });
    await rig.router.settled();
    expect(JSON.parse((await get(rig.router.http.url, 'live.test')).body).backend).toBe('b');
    rig.routes.remove('live');
    await rig.router.settled();
    expect((await get(rig.router.http.url, 'live.test')).status).toBe(404);
  });

  it('rejects bad routes with a typed error', () => {
    return startRig([]).then(async (rig) => {
      track(rig);
      expect(() => rig.routes.set({ id: 'x', type: 'http', domain: 'bad domain', service: 'ok' })).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_ROUTER_INVALID_ROUTE' }));
      expect(() => rig.routes.set({ id: 'x', type: 'tcp', port: 70000, service: 'ok' })).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_ROUTER_INVALID_ROUTE' }));
      rig.routes.set({ id: 'one', type: 'http', domain: 'a.test', service: 'ok' });
      expect(() => rig.routes.set({ id: 'two', type: 'http', domain: 'a.test', service: 'ok' })).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_ROUTER_ROUTE_CONFLICT' }));
    });
  });
});

describe('router: route source failures', () => {
  it('watches the route source again when its watch fails, and applies the new table', async () => {
    const { createDiscovery } = await import('../../src/discovery/index.js');
    const { startRouter } = await import('../../src/router/index.js');
    const app = await startBackend('app');
    const discovery = createDiscovery({ backend: 'memory' });
    const reg = await discovery.register({ service: 'app-web', addr: app.addr });
    let watches = 0;
    const source = {
      list: async () => [],
      async *watch() {
        watches++;
        if (watches === 1) {
          yield { type: 'current' as const, routes: [] };
          throw new Error('controller went away');
        }
        yield { type: 'current' as const, routes: [{ id: 'app', type: 'http' as const, domain: 'app.test', service: 'app-web' }] };
        await new Promise(() => {});
      },
    };
    const router = await startRouter({ discovery, routes: source, http: { host: '127.0.0.1', port: 0 }, rewatchDelayMs: 20 });
    try {
      await until(() => router.routes().length === 1);
      expect((await get(router.http.url, 'app.test')).status).toBe(200);
      expect(watches).toBe(2);
    } finally {
      await router.close();
      await reg.unregister();
      await discovery.close();
      await app.close();
    }
  });
});
