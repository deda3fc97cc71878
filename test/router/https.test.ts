import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect as connectH2 } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterCertificate, selfSignedCertificate } from '../../src/router/certificate.js';
import { get, startBackend, ENGINES, rigFor, type Rig, type TestBackend } from './support.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

/** One HTTPS/1.1 request: the certificate's CN and what the backend answered. */
function fetchTls(port: number, host: string, servername: string | undefined, ca: string): Promise<{ cn: string; status: number; body: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), headers: { host }, ca, agent: false, checkServerIdentity: () => undefined }, (res) => {
      const socket = res.socket as TLSSocket;
      const cn = String(socket.getPeerCertificate().subject.CN);
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ cn, status: res.statusCode ?? 0, body, alpn: socket.alpnProtocol }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.each(ENGINES)('router (%s engine): HTTPS', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('serves the default certificate to names without a route certificate and to clients without SNI', async () => {
    const fallback = await selfSignedCertificate(['*.apps.test', 'localhost']);
    const app = track(await startBackend('app'));
    const own = track(await startBackend('own', '127.0.0.3'));
    const rig = track(
      await startRig(
        [
          { id: 'app', type: 'http', domain: 'app.apps.test', service: 'app-web' },
          { id: 'own', type: 'http', domain: 'a.test', service: 'own-web', tls: { cert: fixture('a.test.crt'), key: fixture('a.test.key') } },
        ],
        { https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback },
      ),
    );
    await rig.register('app-web', app.addr);
    await rig.register('own-web', own.addr);
    const port = rig.router.https?.port ?? 0;
    const plain = await fetchTls(port, 'app.apps.test', 'app.apps.test', fallback.cert);
    expect(plain).toMatchObject({ cn: '*.apps.test', status: 200 });
    expect(JSON.parse(plain.body)).toMatchObject({ backend: 'app', headers: { 'x-forwarded-proto': 'https' } });
    expect(await fetchTls(port, 'app.apps.test', undefined, fallback.cert)).toMatchObject({ cn: '*.apps.test', status: 200 });
    expect(await fetchTls(port, 'a.test', 'a.test', fixture('a.test.crt'))).toMatchObject({ cn: 'a.test', status: 200 });
    // The default certificate is a real one for the names it was made for.
    expect(new X509Certificate(fallback.cert).checkHost('x.apps.test')).toBe('*.apps.test');
  });

  it('leaves out a route pair whose key does not match, and still applies every later certificate', async () => {
    const fallback = await selfSignedCertificate(['*.apps.test', 'localhost']);
    const own = track(await startBackend('own', '127.0.0.3'));
    const rig = track(await startRig([], { https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback }));
    await rig.register('own-web', own.addr);
    const port = rig.router.https?.port ?? 0;
    // a.test's certificate with b.test's key: the router cannot serve it.
    rig.routes.set({ id: 'bad', type: 'http', domain: 'a.test', service: 'own-web', tls: { cert: fixture('a.test.crt'), key: fixture('b.test.key') } });
    await rig.router.settled();
    rig.routes.set({ id: 'good', type: 'http', domain: 'b.test', service: 'own-web', tls: { cert: fixture('b.test.crt'), key: fixture('b.test.key') } });
    await rig.router.settled();
    expect(await fetchTls(port, 'b.test', 'b.test', fixture('b.test.crt'))).toMatchObject({ cn: 'b.test', status: 200 });
    // The bad route is served with the default certificate, and serves once its pair is mended.
    expect(await fetchTls(port, 'a.test', 'a.test', fallback.cert)).toMatchObject({ cn: '*.apps.test', status: 200 });
    rig.routes.set({ id: 'bad', type: 'http', domain: 'a.test', service: 'own-web', tls: { cert: fixture('a.test.crt'), key: fixture('a.test.key') } });
    await rig.router.settled();
    expect(await fetchTls(port, 'a.test', 'a.test', fixture('a.test.crt'))).toMatchObject({ cn: 'a.test', status: 200 });
  });

  it('speaks HTTP/2 to clients that offer it by ALPN, with the same routing and headers', async () => {
    const fallback = await selfSignedCertificate(['localhost']);
    const app = track(await startBackend('app', '127.0.0.2', (req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, body: req.headers['content-length'] ?? null }));
    }));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback }));
    await rig.register('app-web', app.addr);
    const session = connectH2(`https://127.0.0.1:${rig.router.https?.port}`, { ca: fallback.cert, servername: 'localhost', checkServerIdentity: () => undefined });
    cleanup.push(async () => void session.close());
    const h2 = (headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const stream = session.request(headers);
        let status = 0;
        let seen: Record<string, unknown> = {};
        let text = '';
        stream.on('response', (h) => ((status = Number(h[':status'])), (seen = h)));
        stream.on('data', (c: Buffer) => (text += c.toString()));
        stream.on('end', () => resolve({ status, headers: seen, body: text }));
        stream.on('error', reject);
        stream.end(body);
      });
    const got = await h2({ ':path': '/x?y=1', ':authority': 'app.test' });
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body)).toEqual({ method: 'GET', url: '/x?y=1', host: 'app.test', body: null });
    expect(got.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const posted = await h2({ ':path': '/p', ':method': 'POST', ':authority': 'app.test', 'content-length': '5' }, 'hello');
    expect(JSON.parse(posted.body)).toMatchObject({ method: 'POST', body: '5' });
    expect((await h2({ ':path': '/', ':authority': 'nope.test' })).status).toBe(404);
  });

  it('redirects plain HTTP to HTTPS with 308 for a route that asks for it', async () => {
    const fallback = await selfSignedCertificate(['localhost']);
    const app = track(await startBackend('app'));
    const rig = track(
      await startRig(
        [
          { id: 'secure', type: 'http', domain: 'secure.test', service: 'app-web', redirectHttps: true },
          { id: 'plain', type: 'http', domain: 'plain.test', service: 'app-web' },
        ],
        { https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback },
      ),
    );
    await rig.register('app-web', app.addr);
    const moved = await get(rig.router.http.url, 'Secure.test:8080', { path: '/x?y=1', method: 'POST', body: 'kept' });
    expect(moved.status).toBe(308);
    expect(moved.headers.location).toBe(`https://secure.test:${rig.router.https?.port}/x?y=1`);
    expect(app.hits).toBe(0);
    expect((await get(rig.router.http.url, 'plain.test')).status).toBe(200);
    expect((await fetchTls(rig.router.https?.port ?? 0, 'secure.test', 'secure.test', fallback.cert)).status).toBe(200);
  });

  it('upgrades WebSockets over HTTPS/1.1', async () => {
    const fallback = await selfSignedCertificate(['localhost']);
    const ws = track(await startBackend('ws'));
    ws.server.on('upgrade', (req, socket: Duplex) => {
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.on('data', (c: Buffer) => socket.write(`echo:${c}`));
      socket.on('end', () => socket.destroy());
    });
    const rig = track(await startRig([{ id: 'ws', type: 'http', domain: 'ws.test', service: 'ws-web' }], { https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback }));
    await rig.register('ws-web', ws.addr);
    const socket = await new Promise<Duplex>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: rig.router.https?.port, ca: fallback.cert, checkServerIdentity: () => undefined, headers: { host: 'ws.test', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } });
      req.on('upgrade', (_res, s) => resolve(s));
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    const reply = new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
    socket.write('hi');
    expect(await reply).toBe('echo:hi');
    socket.destroy();
  });

  it('makes the cluster certificate once and reads it back afterwards, its key readable by the owner only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'router-cert-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const first = await clusterCertificate(join(dir, 'tls'), ['*.flynn.local', 'flynn.local', '127.0.0.1']);
    const again = await clusterCertificate(join(dir, 'tls'), ['*.flynn.local']);
    expect(again).toEqual(first);
    expect((await stat(join(dir, 'tls', 'router.key'))).mode & 0o777).toBe(0o600);
    const x509 = new X509Certificate(first.cert);
    expect(x509.checkHost('myapp.flynn.local')).toBe('*.flynn.local');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});
