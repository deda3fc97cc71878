import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { requestId } from '../../src/router/headers.js';
import { get, startBackend, ENGINES, rigFor, type Rig, type TestBackend } from './support.js';

/** The data path (undici dispatch handler for every request, flat header arrays, counter request ids). */
describe.each(ENGINES)('router (%s engine): data path', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('streams a chunked request body to the backend whole, and relays a declined Upgrade with its body', async () => {
    const backend = track(await startBackend('app', '127.0.0.2', (req, res) => {
      if (req.headers.upgrade) {
        res.writeHead(426, { 'content-type': 'text/plain' });
        return res.end('no upgrade here');
      }
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(JSON.stringify({ body, framing: req.headers['transfer-encoding'] ?? req.headers['content-length'] })));
    }));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }]));
    await rig.register('app-web', backend.addr);
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: rig.router.http.port, method: 'POST', path: '/', headers: { host: 'app.test', expect: '100-continue' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      // The body goes out in pieces only once the router said 100 Continue.
      req.on('continue', () => {
        req.write('first,');
        setTimeout(() => req.end('second'), 50);
      });
    });
    expect(JSON.parse(answer)).toMatchObject({ body: 'first,second', framing: 'chunked' });
    const declined = await new Promise<string>((resolve) => {
      const socket = connect(rig.router.http.port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('no upgrade here')) resolve(text);
      });
      socket.on('close', () => resolve(text));
      cleanup.push(async () => void socket.destroy());
      socket.write('GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    expect(declined).toMatch(/^HTTP\/1.1 426 Upgrade Required\r\n/);
    // The body as sent (HAProxy keeps the backend's chunked framing; the node engine closes the connection after it).
    expect(declined).toContain('no upgrade here');
  });

  it('generates distinct UUID-shaped request ids, and replaces a repeated incoming one', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(requestId());
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 5)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app' }]));
    await rig.register('app', app.addr);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) seen.push(JSON.parse((await get(rig.router.http.url, 'app.test')).body).headers['x-request-id']);
    expect(new Set(seen).size).toBe(3);
    // Two x-request-id lines are not one valid id: node would join them with ", ".
    const twice = await rawGet(rig.router.http.port, 'GET / HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: client-chosen-id-0123456789\r\nX-Request-Id: client-chosen-id-0123456789\r\nConnection: close\r\n\r\n');
    expect(JSON.parse(twice.slice(twice.indexOf('\r\n\r\n') + 4)).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('relays repeated response headers as separate lines and drops hop-by-hop ones', async () => {
    const app = track(
      await startBackend('app', '127.0.0.2', (_req, res) => {
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
        res.setHeader('keep-alive', 'timeout=99');
        res.setHeader('x-kept', 'yes');
        res.end('ok');
      }),
    );
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app' }]));
    await rig.register('app', app.addr);
    const res = await get(rig.router.http.url, 'app.test');
    expect(res.body).toBe('ok');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers['x-kept']).toBe('yes');
    expect(res.headers['keep-alive']).not.toBe('timeout=99');
  });

  it('drops hop-by-hop request headers before the backend: TE, Keep-Alive, Proxy-Connection', async () => {
    const app = track(await startBackend('app'));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app' }]));
    await rig.register('app', app.addr);
    const answer = await rawGet(
      rig.router.http.port,
      'GET / HTTP/1.1\r\nHost: app.test\r\nTE: trailers\r\nKeep-Alive: timeout=99\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\nConnection: close\r\n\r\n',
    );
    const headers = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).headers;
    expect(headers['x-kept']).toBe('yes');
    expect(headers).not.toHaveProperty('te');
    expect(headers).not.toHaveProperty('keep-alive');
    expect(headers).not.toHaveProperty('proxy-connection');
  });

  it('streams a slow body to the client as it comes instead of holding it until the end', async () => {
    let finish: (() => void) | undefined;
    const app = track(
      await startBackend('app', '127.0.0.2', (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        finish = () => res.end('data: last\n\n');
      }),
    );
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app' }]));
    await rig.register('app', app.addr);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: rig.router.http.port, path: '/', headers: { host: 'app.test' }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          // The backend only ends once the first event reached the client through the router.
          if (text.includes('first') && finish) {
            finish();
            finish = undefined;
          }
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('data: first\n\ndata: last\n\n');
  });

  it('relays a large body in full, with backpressure towards a slow client', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh');
    const app = track(await startBackend('app', '127.0.0.2', (_req, res) => res.end(big)));
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app' }]));
    await rig.register('app', app.addr);
    const received = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: rig.router.http.port, path: '/', headers: { host: 'app.test' }, agent: false }, (res) => {
        let n = 0;
        res.on('data', (chunk: Buffer) => {
          n += chunk.length;
          // Read slowly: the router must pause the backend rather than fail or lose bytes.
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(received).toBe(big.length);
  });
});

function rawGet(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (out += c));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}
