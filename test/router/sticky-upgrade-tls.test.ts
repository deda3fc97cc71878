import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { get, startBackend, ENGINES, rigFor, until, type Rig, type TestBackend } from './support.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

describe.each(ENGINES)('router (%s engine): sticky sessions, upgrades and TLS', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('pins a client to one backend with a signed cookie while that backend lives', async () => {
    const a = track(await startBackend('a'));
    const b = track(await startBackend('b', '127.0.0.3'));
    const r = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web', sticky: true }], { stickyKey: 'a-test-key-of-32-bytes-0123456789' }));
    const regA = await r.register('app-web', a.addr);
    const regB = await r.register('app-web', b.addr);
    const first = await get(r.router.http.url, 'app.test');
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    // The node engine signs `<addr>.<hmac>`; HAProxy's dynamic cookie is a hash of its key (from stickyKey) and the address.
    expect(setCookie).toMatch(engine === 'node' ? /^_backend=[\w-]+\.[\w-]+; Path=\/; HttpOnly$/ : /^_backend=[0-9a-f]+; path=\/; HttpOnly$/);
    const cookie = setCookie.split(';')[0] as string;
    const pinned = first.headers['x-backend'];
    for (let i = 0; i < 20; i++) {
      const res = await get(r.router.http.url, 'app.test', { headers: { cookie: `other=1; ${cookie}` } });
      expect(res.headers['x-backend']).toBe(pinned);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // a forged cookie (valid address, wrong signature) is ignored and replaced
    const forged = `${cookie.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`;
    expect((await get(r.router.http.url, 'app.test', { headers: { cookie: forged } })).headers['set-cookie']).toBeDefined();
    // when the pinned backend goes, the client moves and gets a new cookie
    await (pinned === 'a' ? regA : regB).unregister();
    // Once the router has seen it go (a router that kept the pinned backend never gets there).
    let moved = await get(r.router.http.url, 'app.test', { headers: { cookie } });
    await until(async () => (moved = await get(r.router.http.url, 'app.test', { headers: { cookie } })).headers['x-backend'] !== pinned);
    expect(moved.headers['x-backend']).toBe(pinned === 'a' ? 'b' : 'a');
    expect(moved.headers['set-cookie']?.[0]).toMatch(/^_backend=/);
  });

  it('proxies a WebSocket upgrade and echoes both ways', async () => {
    const ws = track(await startBackend('ws'));
    ws.server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Seen-Proto: ${req.headers['x-forwarded-proto']}\r\n\r\n`);
      if (head.length > 0) socket.write(head);
      socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), chunk])));
      socket.on('end', () => socket.end());
      socket.on('error', () => socket.destroy());
    });
    const r = track(await startRig([{ id: 'ws', type: 'http', domain: 'ws.test', service: 'ws' }]));
    await r.register('ws', ws.addr);
    const u = new URL(r.router.http.url);
    const key = Buffer.from('0123456789abcdef').toString('base64');
    const { res, socket } = await new Promise<{ res: import('node:http').IncomingMessage; socket: Duplex }>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: '/chat', headers: { host: 'ws.test', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' } });
      req.on('upgrade', (res, socket) => resolve({ res, socket }));
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(101);
    expect(res.headers['sec-websocket-accept']).toBe(createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'));
    expect(res.headers['x-seen-proto']).toBe('http');
    const reply = new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
    socket.write('hello');
    expect(await reply).toBe('echo:hello');
    socket.destroy();
  });

  it('answers an upgrade for an unknown host with 404', async () => {
    const r = track(await startRig([]));
    const u = new URL(r.router.http.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, headers: { host: 'nope.test', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(404);
  });

  it('serves two certificates on one HTTPS port, chosen by SNI', async () => {
    const a = track(await startBackend('a'));
    const b = track(await startBackend('b', '127.0.0.3'));
    const r = track(
      await startRig(
        [
          { id: 'a', type: 'http', domain: 'a.test', service: 'a-web', tls: { cert: fixture('a.test.crt'), key: fixture('a.test.key') } },
          { id: 'b', type: 'http', domain: '*.b.test', service: 'b-web', tls: { cert: fixture('b.test.crt'), key: fixture('b.test.key') } },
        ],
        { https: { host: '127.0.0.1', port: 0 } },
      ),
    );
    await r.register('a-web', a.addr);
    await r.register('b-web', b.addr);
    const https = r.router.https;
    if (!https) throw new Error('no https listener');
    const fetchTls = (host: string, ca: string) =>
      new Promise<{ cn: string; backend: string; proto: string; port: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: https.port, servername: host, headers: { host }, ca, agent: false }, (res) => {
          const cert = (res.socket as TLSSocket).getPeerCertificate();
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => {
            const parsed = JSON.parse(body);
            resolve({ cn: String(cert.subject.CN), backend: parsed.backend, proto: parsed.headers['x-forwarded-proto'], port: parsed.headers['x-forwarded-port'] });
          });
        });
        req.on('error', reject);
        req.end();
      });
    expect(await fetchTls('a.test', fixture('a.test.crt'))).toEqual({ cn: 'a.test', backend: 'a', proto: 'https', port: String(https.port) });
    expect(await fetchTls('www.b.test', fixture('b.test.crt'))).toEqual({ cn: 'b.test', backend: 'b', proto: 'https', port: String(https.port) });
    // the certificate of one domain does not validate for the other
    await expect(fetchTls('www.b.test', fixture('a.test.crt'))).rejects.toThrow();
  });
});
