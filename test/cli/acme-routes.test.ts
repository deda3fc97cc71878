import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.js';
import type { HttpRoute } from '../../src/controller/route-types.js';
import { KEY, startHarness, type Harness } from '../controller/harness.js';

/** `--acme` on routes through the CLI and the API (the ACME client itself: test/acme). */
describe('flynn route-add-http --acme / route-update --acme, and the state routes shows', () => {
  let h: Harness;
  let dir: string;
  const flynn = async (...argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, { env: { FLYNNRC: join(dir, 'flynnrc.json'), HOME: dir }, cwd: dir, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), readLine: async () => undefined });
    return { code, stdout, stderr };
  };

  beforeAll(async () => {
    h = await startHarness({ host: '127.0.0.3' });
    dir = await mkdtemp(join(tmpdir(), 'flynn-acme-cli-'));
    expect((await flynn('server-add', 'test', h.controller.url, KEY)).code).toBe(0);
    await h.client.createApp({ name: 'shop' });
  });

  afterAll(async () => {
    await h?.[Symbol.asyncDispose]();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('asks for an automatic certificate, shows pending/issued/failed in one line, and never the key or the challenge', async () => {
    const added = await flynn('route-add-http', '-a', 'shop', '--acme', 'shop.example.com');
    expect(added.stderr).toBe('');
    const id = added.stdout.trim();
    expect((await flynn('routes', '-a', 'shop')).stdout).toMatch(/^http:shop\.example\.com\s+shop-web\s+http\/\S+\s+acme: pending$/m);
    // What the ACME client records (test/acme does it against a real CA).
    const expiresAt = '2027-03-05T10:00:00.000Z';
    await h.store.recordAcme('shop', id, { acme: { status: 'issued', expiresAt, updatedAt: new Date().toISOString(), challenge: { token: 'tok', keyAuthorization: 'tok.thumb' } }, tls: { cert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n' } });
    expect((await flynn('routes', '-a', 'shop')).stdout).toMatch(/acme: issued \(expires 2027-03-05\)$/m);
    const json = (await flynn('routes', '-a', 'shop', '--json')).stdout;
    expect(json).not.toContain('secret');
    expect(json).not.toContain('tok.thumb');
    expect(JSON.parse(json)[0]).toMatchObject({ acme: { status: 'issued', expiresAt }, tls: { keySet: true } });
    await h.store.recordAcme('shop', id, { acme: { status: 'failed', error: 'DNS problem: NXDOMAIN looking up A for shop.example.com', expiresAt, updatedAt: new Date().toISOString() } });
    expect((await flynn('routes', '-a', 'shop')).stdout).toMatch(/acme: failed: DNS problem: NXDOMAIN looking up A for shop\.example\.com; serving the last certificate \(expires 2027-03-05\)$/m);
    // --no-acme drops the state and the certificate it issued; --acme asks again.
    expect((await flynn('route-update', '-a', 'shop', '--no-acme', id)).code).toBe(0);
    const off = (await h.store.getRoute('shop', id)) as HttpRoute;
    expect(off.acme).toBeUndefined();
    expect(off.tls).toBeUndefined();
    expect((await flynn('route-update', '-a', 'shop', '--acme', id)).code).toBe(0);
    expect(((await h.store.getRoute('shop', id)) as HttpRoute).acme?.status).toBe('pending');
  });

  it('refuses --acme for a wildcard and with an uploaded certificate, in one line', async () => {
    const wild = await flynn('route-add-http', '-a', 'shop', '--acme', '*.example.com');
    expect(wild.code).toBe(1);
    expect(wild.stderr).toMatch(/acme cannot certify the wildcard \*\.example\.com: HTTP-01 validates exact names only/);
    const both = await flynn('route-add-http', '-a', 'shop', '--acme', '--tls-cert', 'a.crt', '--tls-key', 'a.key', 'both.example.com');
    expect(both.code).toBe(2);
    const api = await h.client.createRoute('shop', { type: 'http', domain: 'both.example.com', service: 'shop-web', acme: true, tls: { cert: 'c', key: 'k' } }).catch((err: Error) => err);
    expect(String(api)).toMatch(/acme and tls exclude each other/);
    const tcp = await h.raw('POST', '/apps/shop/routes', { body: JSON.stringify({ type: 'tcp', port: 4000, service: 'shop-web', acme: true }), headers: { 'content-type': 'application/json' } });
    expect(tcp).toMatchObject({ status: 400, body: { message: expect.stringContaining('a tcp route has no acme') } });
  });
});
