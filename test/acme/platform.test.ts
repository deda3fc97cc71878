/** The ACME client as `startPlatform` wires it: the API's `acme: true` → a certificate the cluster's router serves. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startPlatform, type Platform } from '../../src/bootstrap/index.js';
import { until } from '../../src/common/until.js';
import { createDiscovery } from '../../src/discovery/index.js';
import { startTestDns, type TestDns } from '../support/dns.js';
import { freePort, startPebble, type TestPebble } from '../support/pebble.js';
import { needPebble } from '../support/services.js';
import { served } from '../support/served-certificate.js';

const HOST = '127.0.0.1';

// In process, and with the router as a process of its own (`npm start`'s default), fed snapshots.
describe.runIf(await needPebble('ACME client in a platform')).each([{ detachedRouter: false }, { detachedRouter: true }])('a platform with an ACME CA (pebble), %o', ({ detachedRouter }) => {
  const discovery = createDiscovery({ backend: 'memory' });
  let dns: TestDns;
  let pebble: TestPebble;
  let platform: Platform;
  let dataDir: string;

  beforeAll(async () => {
    dns = await startTestDns({ 'web.flynn.test': HOST });
    // Pebble validates on the router's HTTP port, so that port is chosen first.
    const router = await freePort(HOST);
    pebble = await startPebble({ httpPort: router, dnsServer: dns.addr });
    dataDir = await mkdtemp(join(tmpdir(), 'flynn-acme-platform-'));
    platform = await startPlatform({ discovery, dataDir, detachedRouter, host: HOST, build: 'process', ports: { controller: 0, router, routerHttps: 0, git: 0, shelf: 0 }, acme: { directoryUrl: pebble.directoryUrl, ca: pebble.ca, email: 'ops@flynn.test' } });
  }, 120_000);

  afterAll(async () => {
    await platform?.close();
    await pebble?.close();
    await dns?.close();
    await discovery.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('issues the certificate of a route created with acme through the API and serves it on the cluster HTTPS port', async () => {
    const client = platform.client;
    await client.createApp({ name: 'web' });
    const route = await client.createRoute('web', { type: 'http', domain: 'web.flynn.test', service: 'web-web', acme: true });
    expect(route).toMatchObject({ acme: { status: 'pending' } });
    // The app's events from its first: the route's writes until its order ended (issued or failed).
    await until(
      (signal) => client.events({ app: 'web', lastEventId: '0', signal }),
      (e) => e.object === 'route' && e.objectId === route.id && (e.data as { acme?: { status: string } }).acme?.status !== 'pending',
      { timeoutMs: 30_000, what: 'the order of web.flynn.test to end' },
    );
    const shown = await client.getRoute('web', route.id);
    expect(shown).toMatchObject({ acme: { status: 'issued' }, tls: { keySet: true } });
    const root = await pebble.root();
    // The router (a process of its own when detached) serves it once the platform has passed the route on.
    const peer = await vi.waitFor(
      async () => {
        const s = await served(platform.routerHttpsPort, 'web.flynn.test', root, HOST);
        if (!s.authorized) throw new Error(`the issued certificate is not served yet (${s.error ?? 'unverified'})`);
        return s;
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(String(peer.cert.issuer.CN)).toMatch(/^Pebble Intermediate CA/);
  }, 60_000);
});
