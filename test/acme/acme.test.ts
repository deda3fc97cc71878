import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAcme, type AcmeManager } from '../../src/acme/index.js';
import { StoreRouteSource } from '../../src/bootstrap/route-source.js';
import { until } from '../../src/common/until.js';
import { MemoryStore } from '../../src/controller/memory-store.js';
import { routeView } from '../../src/controller/route-view.js';
import type { HttpRoute } from '../../src/controller/route-types.js';
import { createDiscovery } from '../../src/discovery/index.js';
import { selfSignedCertificate } from '../../src/router/certificate.js';
import { startRouter, type Router } from '../../src/router/index.js';
import { ENGINES } from '../router/support.js';
import { startTestDns, type TestDns } from '../support/dns.js';
import { startPebble, type TestPebble } from '../support/pebble.js';
import { sleep } from '../../src/common/lifecycle.js';
import { needPebble } from '../support/services.js';
import { served } from '../support/served-certificate.js';

describe.runIf(await needPebble('ACME client against pebble')).each(ENGINES)('ACME (HTTP-01) against pebble, router engine %s', (engine) => {
  let store: MemoryStore;
  let router: Router;
  let dns: TestDns;
  let pebble: TestPebble;
  let acme: AcmeManager;
  let fallbackCn: string;
  const discovery = createDiscovery({ backend: 'memory' });
  let offsetMs = 0; // the ACME client's clock, moved on to force a renewal
  const clock = { now: () => Date.now() + offsetMs, sleep };

  const route = async (domain: string) => (await store.listRoutes('shop')).find((r): r is HttpRoute => r.type === 'http' && r.domain === domain);
  /** The route once its acme status is `status`: now, or at the store's write that makes it so. */
  const acmeState = async (domain: string, status: string): Promise<HttpRoute> => {
    const since = Math.max(0, ...(await store.listEvents()).map((e) => Number(e.id)));
    const now = await route(domain);
    if (now?.acme?.status === status) return now;
    const change = await until(
      (signal) => store.watchRoutes({ signal, afterEventId: String(since) }),
      (c) => c.type === 'put' && c.route.type === 'http' && c.route.domain === domain && c.route.acme?.status === status,
      { timeoutMs: 30_000, what: `${domain} to be ${status}` },
    );
    return change.type === 'put' ? (change.route as HttpRoute) : (undefined as never);
  };

  beforeAll(async () => {
    store = new MemoryStore();
    await store.createApp({ name: 'shop' });
    const fallback = await selfSignedCertificate(['default.flynn.test']);
    fallbackCn = 'default.flynn.test';
    router = await startRouter({ discovery, engine, routes: new StoreRouteSource(store), http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback, drainTimeoutMs: 1000 });
    // shop and renew resolve to the router; nowhere.flynn.test does not exist.
    dns = await startTestDns({ 'shop.flynn.test': '127.0.0.1', 'renew.flynn.test': '127.0.0.1' });
    pebble = await startPebble({ httpPort: router.http.port, dnsServer: dns.addr });
    acme = await startAcme({ store, directoryUrl: pebble.directoryUrl, ca: pebble.ca, email: 'ops@flynn.test', routerUrl: router.http.url, clock, pollMs: 100 });
  }, 60_000);

  afterAll(async () => {
    await acme?.close();
    await router?.close();
    await pebble?.close();
    await dns?.close();
    await store?.close();
    await discovery.close();
  });

  it('issues a certificate from the CA for a route with acme, and the router serves it by SNI at once', async () => {
    const t0 = Date.now();
    await store.createRoute('shop', { type: 'http', domain: 'shop.flynn.test', service: 'shop-web', acme: true });
    const issued = await acmeState('shop.flynn.test', 'issued');
    const took = Date.now() - t0;
    expect(issued.acme).toMatchObject({ status: 'issued', expiresAt: expect.stringMatching(/^\d{4}-/) });
    expect(issued.acme?.challenge).toBeUndefined();
    expect(issued.tls?.key).toContain('PRIVATE KEY');
    // The API shows the state, never the key.
    const view = JSON.stringify(routeView(issued));
    expect(view).not.toContain('PRIVATE KEY');
    expect(view).toContain('"status":"issued"');
    const root = await pebble.root();
    const got = await vi.waitFor(
      async () => {
        const s = await served(router.https?.port ?? 0, 'shop.flynn.test', root);
        if (s.cert.subject?.CN === fallbackCn) throw new Error('the default certificate is still served');
        return s;
      },
      { timeout: 30_000, interval: 100 },
    );
    // Verified against pebble's root: leaf + intermediate sent, issued for the domain by pebble's intermediate.
    expect(got.error).toBeUndefined();
    expect(got.authorized).toBe(true);
    expect(got.cert.subjectaltname).toBe('DNS:shop.flynn.test');
    expect(got.cert.issuer.CN).toMatch(/^Pebble Intermediate CA/);
    expect(new X509Certificate(issued.tls?.cert ?? '').checkHost('shop.flynn.test')).toBe('shop.flynn.test');
    console.log(`[acme ${engine}] route added → certificate issued in ${took} ms`);
  }, 60_000);

  it('reports a domain whose challenge cannot be answered as failed in one line, and the default certificate keeps serving', async () => {
    await store.createRoute('shop', { type: 'http', domain: 'nowhere.flynn.test', service: 'shop-web', acme: true });
    const failed = await acmeState('nowhere.flynn.test', 'failed');
    // Pebble says so in its words (Let's Encrypt: "DNS problem: NXDOMAIN looking up A for ...").
    expect(failed.acme?.error).toMatch(/could not resolve URL .*nowhere\.flynn\.test/);
    expect(failed.acme?.error).not.toContain('\n');
    expect(failed.tls).toBeUndefined();
    const s = await served(router.https?.port ?? 0, 'nowhere.flynn.test', pebble.ca);
    expect(s.cert.subject.CN).toBe(fallbackCn);
    // Not ordered again before retryFailedMs (1 h).
    await acme.check();
    expect((await route('nowhere.flynn.test'))?.acme?.updatedAt).toBe(failed.acme?.updatedAt);
  }, 60_000);

  it('renews a certificate once fewer than renewBeforeDays remain, serving the old one meanwhile', async () => {
    await store.createRoute('shop', { type: 'http', domain: 'renew.flynn.test', service: 'shop-web', acme: true });
    const first = await acmeState('renew.flynn.test', 'issued');
    const firstSerial = new X509Certificate(first.tls?.cert ?? '').serialNumber;
    // Not due yet: nothing happens.
    await acme.check();
    expect((await route('renew.flynn.test'))?.tls?.cert).toBe(first.tls?.cert);
    // From the store's last event before the renewal is due on: however late the watch opens, it
    // misses no write of the renewal, whether the check below or the manager's route watch starts it.
    const since = Math.max(0, ...(await store.listEvents()).map((e) => Number(e.id)));
    // 29 days before expiry (the default threshold is 30).
    offsetMs = Date.parse(first.acme?.expiresAt ?? '') - 29 * 86_400_000 - Date.now();
    // Every write during the renewal (the challenge, then the new pair) keeps a certificate on the route.
    const watching = new AbortController();
    const writes: HttpRoute[] = [];
    const watched = (async () => {
      for await (const c of store.watchRoutes({ signal: watching.signal, afterEventId: String(since) })) if (c.type === 'put' && c.route.id === first.id) writes.push(c.route as HttpRoute);
    })();
    await acme.check();
    // Until the watch has seen the check's last write, the new pair.
    await vi.waitFor(() => expect(writes.some((w) => w.tls?.cert !== first.tls?.cert)).toBe(true), { timeout: 30_000 });
    watching.abort();
    await watched;
    expect(writes.length).toBeGreaterThanOrEqual(2);
    expect(writes.every((w) => w.tls !== undefined && w.acme?.status === 'issued')).toBe(true);
    const renewed = await route('renew.flynn.test');
    const serial = new X509Certificate(renewed?.tls?.cert ?? '').serialNumber;
    expect(serial).not.toBe(firstSerial);
    expect(renewed?.acme?.status).toBe('issued');
    const root = await pebble.root();
    const s = await vi.waitFor(
      async () => {
        const got = await served(router.https?.port ?? 0, 'renew.flynn.test', root);
        if (got.cert.serialNumber !== serial) throw new Error('the renewed certificate is not served yet');
        return got;
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(s.authorized).toBe(true);
    offsetMs = 0;
  }, 60_000);
});

describe('startAcme options', () => {
  it('refuses a directory that is not an http(s) URL, negative renew days and a CA bundle that is not PEM, in one line', async () => {
    const store = new MemoryStore();
    const refused = (options: Partial<Parameters<typeof startAcme>[0]>) => startAcme({ store, ...options }).then(async (m) => (await m.close(), undefined), (err: unknown) => err);
    expect(await refused({ directoryUrl: 'ftp://ca.test/dir' })).toMatchObject({ code: 'FLYNN_ERR_ACME_INVALID_OPTIONS', detail: { field: 'directoryUrl' } });
    expect(await refused({ renewBeforeDays: -1 })).toMatchObject({ code: 'FLYNN_ERR_ACME_INVALID_OPTIONS', detail: { field: 'renewBeforeDays' } });
    expect(await refused({ ca: 'not a certificate' })).toMatchObject({ code: 'FLYNN_ERR_ACME_INVALID_OPTIONS', detail: { field: 'ca' } });
    expect(await refused({ email: 'notanemail' })).toMatchObject({ code: 'FLYNN_ERR_ACME_INVALID_OPTIONS', detail: { field: 'email' } });
    await store.close();
  });

  it('fails an order at once, in one line naming the CA and the cause, when the directory cannot be reached', async () => {
    const store = new MemoryStore();
    await store.createApp({ name: 'shop' });
    // Port 1 on loopback: nothing listens there.
    const directoryUrl = 'http://127.0.0.1:1/directory';
    await using acme = await startAcme({ store, directoryUrl, pollMs: 1000 });
    await store.createRoute('shop', { type: 'http', domain: 'shop.flynn.test', service: 'shop-web', acme: true });
    await acme.check();
    const [route] = await store.listRoutes('shop');
    expect(route).toMatchObject({ acme: { status: 'failed', error: `cannot reach the ACME directory ${directoryUrl}: connection refused` } });
    await store.close();
  });
});
