import { describe, expect, it, onTestFinished } from 'vitest';
import { StoreRouteSource } from '../../src/bootstrap/route-source.js';
import { MemoryStore } from '../../src/controller/index.js';
import { validateRoute } from '../../src/router/index.js';

describe('the controller store as the route source', () => {
  it("passes a route's timeouts, health check and HTTPS redirect to the router, and their updates", async () => {
    const store = new MemoryStore();
    onTestFinished(() => store.close());
    await store.createApp({ name: 'shop' });
    const options = { timeouts: { connectMs: 500, websocketIdleMs: 60_000 }, healthCheck: { path: '/healthz', intervalMs: 1000, timeoutMs: 300 }, redirectHttps: true };
    const created = await store.createRoute('shop', { type: 'http', domain: 'shop.example.com', service: 'shop-web', ...options });
    const source = new StoreRouteSource(store);
    const [route] = await source.list();
    expect(validateRoute(route)).toEqual({ id: created.id, type: 'http', domain: 'shop.example.com', path: '/', service: 'shop-web', ...options });

    const abort = new AbortController();
    const events = source.watch({ signal: abort.signal })[Symbol.asyncIterator]();
    expect((await events.next()).value).toMatchObject({ type: 'current' });
    await store.updateRoute('shop', created.id, { timeouts: null, healthCheck: { path: '/up' }, redirectHttps: false });
    const set = (await events.next()).value;
    expect(set).toMatchObject({ type: 'set', route: { id: created.id, healthCheck: { path: '/up' } } });
    expect(set.route).not.toHaveProperty('timeouts');
    expect(set.route).not.toHaveProperty('redirectHttps');
    abort.abort();
  });
});
