import { connect as connectH2 } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/router/certificate.js';
import { originForm, targetError } from '../../src/router/request-target.js';
import { raw, ENGINES, perTest } from './support.js';

describe('request-target checks', () => {
  it('takes host[:port] and refuses userinfo, paths and non-numeric ports', () => {
    for (const ok of ['app.flynn.local', 'App.Flynn.Local:8080', '127.0.0.1:80', '[::1]:8443', 'xn--bcher-kva.example']) expect(targetError(ok, '/')).toBeUndefined();
    for (const bad of ['app.flynn.local:x@evil.com/', 'user@app.flynn.local', 'app.flynn.local/x', 'app:80:80', 'app:', '', 'a b', '[::1', 'app:123456']) {
      expect(targetError(bad, '/'), bad).toBe('malformed Host header');
    }
  });

  it('takes an absolute-form target only for the Host it names, and forwards its origin-form', () => {
    expect(targetError('app.test', 'http://APP.test/x?y=1')).toBeUndefined();
    expect(targetError('app.test:80', 'http://app.test/x')).toBeUndefined();
    expect(targetError('app.test', 'https://app.test:443/x')).toBeUndefined();
    expect(targetError('app.test', 'http://evil.example/headers')).toBe('request target and Host name different hosts');
    expect(targetError('app.test', 'http://app.test:8080/')).toBe('request target and Host name different hosts');
    expect(targetError('app.test', 'http://u:p@app.test/')).toBe('malformed authority in the request target');
    expect(targetError('app.test', 'headers')).toBe('malformed request target');
    expect(originForm('http://app.test/x?y=1')).toBe('/x?y=1');
    expect(originForm('http://app.test')).toBe('/');
    expect(originForm('http://app.test?q')).toBe('/?q');
    expect(originForm('/already')).toBe('/already');
  });

  it('refuses a dot-segment in the path, plain or %-encoded, and only in the path', () => {
    for (const bad of ['/x/../api', '/..', '/.', '/a/./b', '/a/%2e%2E/b', '/a/.%2e', '/%2E/', 'http://app.test/x/../api']) {
      expect(targetError('app.test', bad), bad).toBe('dot-segment in the request path');
    }
    for (const ok of ['/.well-known/acme-challenge/t', '/a/..b/c', '/a/b..', '/x?next=/../admin', '/%2f..x', '/file.tar.gz']) {
      expect(targetError('app.test', ok), ok).toBeUndefined();
    }
  });
});

describe.each(ENGINES)('router (%s engine): Host and request-target', (engine) => {
  const { later, oneRoute } = perTest(engine);
  const rig = (extra: Parameters<typeof oneRoute>[1] = {}) => oneRoute('app.flynn.local', extra);
  const status = (answer: string) => Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1]);

  it('answers 400 to a Host that is not host[:port], without asking a backend', async () => {
    const { rig: r, backend } = await rig();
    const port = r.router.http.port;
    for (const host of ['app.flynn.local:x@evil.com/', 'app.flynn.local/evil', 'app.flynn.local:80x']) {
      expect(status(await raw(port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)), host).toBe(400);
    }
    const upgrade = await raw(port, 'GET / HTTP/1.1\r\nHost: app.flynn.local:x@evil.com/\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    expect(status(upgrade)).toBe(400);
    expect(backend.hits).toBe(0);
    expect(status(await raw(port, 'GET / HTTP/1.1\r\nHost: app.flynn.local:8080\r\nConnection: close\r\n\r\n'))).toBe(200);
  });

  it('answers 400 to a dot-segment, so a route for /api cannot be reached through another route', async () => {
    const { rig: r, backend } = await rig();
    const port = r.router.http.port;
    for (const target of ['/x/../api', '/x/%2e%2e/api', 'http://app.flynn.local/x/../api']) {
      expect(status(await raw(port, `GET ${target} HTTP/1.1\r\nHost: app.flynn.local\r\nConnection: close\r\n\r\n`)), target).toBe(400);
    }
    expect(backend.hits).toBe(0);
    expect(status(await raw(port, 'GET /.well-known/x?to=/../y HTTP/1.1\r\nHost: app.flynn.local\r\nConnection: close\r\n\r\n'))).toBe(200);
  });

  it('answers 400 to an absolute-form target naming another host than Host, and forwards origin-form when they agree', async () => {
    const { rig: r, backend } = await rig();
    const port = r.router.http.port;
    const other = await raw(port, 'GET http://evil.example/headers HTTP/1.1\r\nHost: app.flynn.local\r\nConnection: close\r\n\r\n');
    expect(status(other)).toBe(400);
    expect(backend.hits).toBe(0);
    const same = await raw(port, 'GET http://app.flynn.local/headers?x=1 HTTP/1.1\r\nHost: app.flynn.local\r\nConnection: close\r\n\r\n');
    expect(status(same)).toBe(200);
    expect(JSON.parse(same.slice(same.indexOf('\r\n\r\n') + 4))).toMatchObject({ url: '/headers?x=1', headers: { host: 'app.flynn.local' } });
  });

  it('HTTP/2: routes by :authority; node answers 400 when a host header names another authority', async () => {
    const fallback = await selfSignedCertificate(['localhost']);
    const { rig: r, backend } = await rig({ https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback });
    const session = connectH2(`https://127.0.0.1:${r.router.https?.port}`, { ca: fallback.cert, servername: 'localhost', checkServerIdentity: () => undefined });
    later(async () => void session.close());
    const h2 = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request(headers);
        let code = 0;
        let body = '';
        stream.on('response', (h) => (code = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => resolve({ status: code, body }));
        stream.on('error', reject);
        stream.end();
      });
    const conflict = await h2({ ':path': '/', ':authority': 'app.flynn.local', host: 'evil.example' });
    const reversed = await h2({ ':path': '/', ':authority': 'evil.example', host: 'app.flynn.local' });
    if (engine === 'node') {
      expect([conflict.status, reversed.status]).toEqual([400, 400]);
      expect(backend.hits).toBe(0);
    } else {
      // HAProxy's HTTP/2 layer drops a host header beside :authority: it routes by :authority and the backend gets that as Host.
      expect(JSON.parse(conflict.body).headers.host).toBe('app.flynn.local');
      expect(reversed.status).toBe(404);
    }
    const same = await h2({ ':path': '/', ':authority': 'app.flynn.local', host: 'APP.flynn.local' });
    expect(same.status).toBe(200);
    expect(JSON.parse(same.body).headers.host.toLowerCase()).toBe('app.flynn.local');
  });
});
