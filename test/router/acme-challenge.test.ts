import { afterEach, describe, expect, it } from 'vitest';
import { get, startBackend, startRig as startNodeRig, ENGINES, rigFor, type Rig, type TestBackend } from './support.js';

const TOKEN = 'tok_EN-123';
const KEY_AUTH = `${TOKEN}.thumbPRINT_-9`;
const PATH = `/.well-known/acme-challenge/${TOKEN}`;

describe.each(ENGINES)('router (%s engine): ACME HTTP-01 challenges', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('answers a route\'s challenge for its domain itself, live, whatever the route\'s path or redirect, and leaves other requests to the app', async () => {
    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'api', type: 'http', domain: 'shop.test', path: '/api', service: 'app-web', redirectHttps: true }], { https: { host: '127.0.0.1', port: 0 } }));
    await rig.register('app-web', app.addr);
    const url = rig.router.http.url;
    // No challenge yet: the path is not the router's (no route for `/` here: 404).
    expect((await get(url, 'shop.test', { path: PATH })).status).toBe(404);
    rig.routes.set({ id: 'api', type: 'http', domain: 'shop.test', path: '/api', service: 'app-web', redirectHttps: true, acmeChallenge: { token: TOKEN, keyAuthorization: KEY_AUTH } });
    await rig.router.settled();
    const hit = await get(url, 'shop.test:80', { path: PATH });
    expect(hit).toMatchObject({ status: 200, body: KEY_AUTH });
    expect(hit.headers['content-type']).toMatch(/^text\/plain/);
    // Another token, another domain: not answered by the router.
    expect((await get(url, 'shop.test', { path: '/.well-known/acme-challenge/other' })).status).toBe(404);
    expect((await get(url, 'other.test', { path: PATH })).status).toBe(404);
    // The app's own requests still go through the route (and its redirect).
    expect((await get(url, 'shop.test', { path: '/api/x' })).status).toBe(308);
    rig.routes.set({ id: 'api', type: 'http', domain: 'shop.test', path: '/api', service: 'app-web' });
    await rig.router.settled();
    expect((await get(url, 'shop.test', { path: PATH })).status).toBe(404);
  });

  it('refuses a challenge token that is not base64url', async () => {
    const rig = track(await startRig([]));
    expect(() => rig.routes.set({ id: 'bad', type: 'http', domain: 'bad.test', service: 'x-web', acmeChallenge: { token: 'a b/../c', keyAuthorization: 'k' } })).toThrow(/acmeChallenge must be \{ token, keyAuthorization \} in base64url/);
  });
});

describe('router (node engine, 2 workers): ACME HTTP-01 challenges', () => {
  it('answers the challenge from every worker once the route carries it', async () => {
    const rig = await startNodeRig([{ id: 'web', type: 'http', domain: 'w.test', service: 'w-web' }], { workers: 2 });
    try {
      rig.routes.set({ id: 'web', type: 'http', domain: 'w.test', service: 'w-web', acmeChallenge: { token: TOKEN, keyAuthorization: KEY_AUTH } });
      await rig.router.settled();
      // Each request is a new connection: both workers get some.
      for (let i = 0; i < 6; i++) expect(await get(rig.router.http.url, 'w.test', { path: PATH })).toMatchObject({ status: 200, body: KEY_AUTH });
    } finally {
      await rig.close();
    }
  });
});
