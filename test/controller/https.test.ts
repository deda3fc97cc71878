import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSelfSigned, type SelfSigned } from '../../src/common/tls/self-signed.js';
import { ControllerClient, startController, type ControllerHandle } from '../../src/controller/index.js';
import { FakeCluster } from '../../src/controller/testing/index.js';
import { MemoryStore } from '../../src/controller/index.js';

const KEY = 'https-test-key';

describe('the controller over HTTPS (self-signed certificate, pinned)', () => {
  let dir: string;
  let tls: SelfSigned;
  let controller: ControllerHandle;
  let store: MemoryStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-https-'));
    tls = await loadOrCreateSelfSigned({ dir, name: 'controller', hosts: ['127.0.0.2'] });
    store = new MemoryStore();
    controller = await startController({ key: KEY, store, jobs: new FakeCluster({ store }), host: '127.0.0.2', tls });
  });
  afterAll(async () => {
    await controller?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('makes the certificate once, keeps the key 0600, and loads the same one again', async () => {
    expect(tls.created).toBe(true);
    expect((await stat(tls.keyFile)).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateSelfSigned({ dir, name: 'controller' });
    expect(again.created).toBe(false);
    expect(again.pin).toBe(tls.pin);
    expect(controller.pin).toBe(tls.pin);
    expect(controller.url).toMatch(/^https:\/\/127\.0\.0\.2:\d+$/);
  });

  it('answers a client that pins the certificate, or trusts it as a CA', async () => {
    const pinned = new ControllerClient({ url: controller.url, key: KEY, tls: { pin: tls.pin } });
    const app = await pinned.createApp({ name: 'pinned' });
    expect(app.name).toBe('pinned');
    await pinned.close();
    const byCa = new ControllerClient({ url: controller.url, key: KEY, tls: { ca: tls.cert } });
    expect((await byCa.listApps()).map((a) => a.name)).toEqual(['pinned']);
    await byCa.close();
  });

  it('refuses a wrong pin with one line, and an unpinned client names the way out', async () => {
    const wrong = new ControllerClient({ url: controller.url, key: KEY, tls: { pin: 'A'.repeat(43) + '=' } });
    const err = (await wrong.listApps().catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/TLS pin mismatch: the server's certificate is \S+=, not the pinned one/);
    expect(err.message).not.toContain('\n');
    await wrong.close();
    const unpinned = new ControllerClient({ url: controller.url, key: KEY });
    const err2 = (await unpinned.listApps().catch((e: unknown) => e)) as Error;
    expect(err2.message).toMatch(/self-signed certificate.*trust its certificate by its pin or CA/);
    await unpinned.close();
  });

  it('answers a plain http:// request with a 400 that says to use https and the pin', async () => {
    const plain = controller.url.replace('https:', 'http:');
    const res = await request(`${plain}/apps`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.statusCode).toBe(400);
    const body = (await res.body.json()) as { code: string; message: string };
    expect(body.code).toBe('FLYNN_ERR_HTTPS_REQUIRED');
    expect(body.message).toBe(`this controller speaks HTTPS only: use ${controller.url} and trust its certificate (flynn server-add -p ${tls.pin} NAME ${controller.url} KEY)`);
    const client = new ControllerClient({ url: plain, key: KEY });
    await expect(client.listApps()).rejects.toThrow(/speaks HTTPS only/);
    await client.close();
  });
});

describe('a pinned client across many connections', () => {
  it('checks the pin on every new connection (no TLS session resumption hides the certificate)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flynn-https-'));
    const tls = await loadOrCreateSelfSigned({ dir });
    const store = new MemoryStore();
    const controller = await startController({ key: KEY, store, jobs: new FakeCluster({ store }), host: '127.0.0.2', tls });
    try {
      for (let i = 0; i < 5; i++) {
        const client = new ControllerClient({ url: controller.url, key: KEY, tls: { pin: tls.pin } });
        expect(await client.listApps()).toEqual([]);
        await client.close();
      }
      // Concurrent requests open more connections after the first: each must show the pinned certificate.
      const client = new ControllerClient({ url: controller.url, key: KEY, tls: { pin: tls.pin } });
      expect(await client.listApps()).toEqual([]);
      for (let i = 0; i < 3; i++) expect(await Promise.all(Array.from({ length: 8 }, () => client.listApps()))).toEqual(Array.from({ length: 8 }, () => []));
      await client.close();
    } finally {
      await controller.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
