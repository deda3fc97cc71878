/**
 * The node engine's fast path (h1-front.ts, h1-exchange.ts, h1-pool.ts) against backends that
 * answer raw bytes: what a misbehaving backend can and cannot make the router send to a client.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, rigFor, startBackend, type Rig } from './support.js';

const startRig = rigFor('node');

/** A backend on 127.0.0.2 whose `answer` gets each request head (by connection) and writes raw bytes. */
async function rawBackend(answer: (socket: Socket, head: string, n: number) => void): Promise<{ addr: string; connections: number; requests: string[]; close(): Promise<void> }> {
  const state = { connections: 0, requests: [] as string[] };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        state.requests.push(head);
        answer(socket, head, state.requests.length);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  return {
    addr: `127.0.0.2:${(server.address() as AddressInfo).port}`,
    get connections() {
      return state.connections;
    },
    requests: state.requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Send raw bytes on one connection (each part in a write of its own); resolve with all that came back once the router closes it. */
function exchange(port: number, text: string | string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts = Array.isArray(text) ? text : [text];
    const socket = connect(port, '127.0.0.1', async () => {
      for (const part of parts) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 20)); // a read of its own for the router, as a slow client sends
      }
    });
    let out = '';
    // Only against a hang: every exchange here ends with the router closing the connection.
    const hang = setTimeout(() => socket.destroy(new Error(`the router did not close the connection; it sent ${JSON.stringify(out)}`)), 15_000);
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('close', () => (clearTimeout(hang), resolve(out)));
    socket.on('error', (err) => (clearTimeout(hang), reject(err)));
  });
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

describe('router (node engine): the fast path', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => (cleanup.push(() => x.close()), x);

  async function rigWith(addr: string, extra = {}): Promise<Rig> {
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app' }], extra));
    await rig.register('app', addr);
    return rig;
  }

  it('answers 502 to a response with smuggler framing, and serves the next request on a fresh connection', async () => {
    const backend = track(
      await rawBackend((socket, _head, n) => socket.write(n === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' : ok('fine'))),
    );
    const rig = await rigWith(backend.addr);
    const first = await get(rig.router.http.url, 'app.test');
    expect(first.status).toBe(502);
    const second = await get(rig.router.http.url, 'app.test');
    expect(second).toMatchObject({ status: 200, body: 'fine' });
    expect(backend.connections).toBe(2);
  });

  it('never hands a second, unasked-for response to the next request', async () => {
    const backend = track(await rawBackend((socket, _head, n) => socket.write(n === 1 ? `${ok('one')}${ok('evil')}` : ok(`req${n}`))));
    const rig = await rigWith(backend.addr);
    const url = rig.router.http.url;
    expect((await get(url, 'app.test')).body).toBe('one');
    const next = await get(url, 'app.test');
    expect(next.body).toBe('req2');
    // The poisoned connection was closed, not reused.
    expect(backend.connections).toBe(2);
  });

  it('cuts the client off when the backend closes mid-body (a truncated body never looks whole)', async () => {
    const backend = track(await rawBackend((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part')));
    const rig = await rigWith(backend.addr);
    const out = await exchange(rig.router.http.port, 'GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1.1 200 OK\r\n[\s\S]*content-length: 100\r\n[\s\S]*\r\n\r\nonly part$/i);
  });

  it('relays chunked and close-delimited bodies sent in small pieces, re-framed for the client', async () => {
    const backend = track(
      await rawBackend((socket, head) => {
        const pieces = head.startsWith('GET /close')
          ? ['HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', 'until', ' the end']
          : ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n', '3\r\nab', 'c\r', '\n4;x=y\r\n', 'defg\r\n0\r\nTrailer-X: 1\r\n', '\r\n'];
        let i = 0;
        const next = () => {
          if (i < pieces.length) socket.write(pieces[i++] as string, () => setTimeout(next, 15));
          else if (head.startsWith('GET /close')) socket.end();
        };
        next();
      }),
    );
    const rig = await rigWith(backend.addr);
    const chunked = await get(rig.router.http.url, 'app.test');
    expect(chunked).toMatchObject({ status: 200, body: 'abcdefg' });
    expect(chunked.headers['x-a']).toBe('1');
    const closed = await get(rig.router.http.url, 'app.test', { path: '/close' });
    expect(closed).toMatchObject({ status: 200, body: 'until the end' });
  });

  it('answers pipelined requests in order, keeps HEAD bodiless, and hands a body request on the same connection to the general path', async () => {
    const app = track(await startBackend('app', '127.0.0.2', (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const text = `${req.method} ${req.url} ${body}`;
        res.writeHead(200, { 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      });
    }));
    const rig = await rigWith(app.addr);
    const out = await exchange(rig.router.http.port, [
      'GET /a HTTP/1.1\r\nHost: app.test\r\n\r\nHEAD /b HTTP/1.1\r\nHost: app.test\r\n\r\nGET /c HTTP/1.1\r\nHost: app.test\r\n\r\n',
      'POST /d HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody',
      'GET /e HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n',
    ]);
    const statuses = out.match(/HTTP\/1.1 200 OK/g) ?? [];
    expect(statuses).toHaveLength(5);
    expect(out.indexOf('GET /a ')).toBeLessThan(out.indexOf('GET /c '));
    // The HEAD answer keeps the backend's length (of `HEAD /b `) and is followed by the next status line at once.
    expect(out).toMatch(/\r\n\r\nGET \/a HTTP\/1.1 200 OK\r\ncontent-length: 8\r\n(?:[^\r]+\r\n)*\r\nHTTP\/1.1 200 OK\r\n/i);
    expect(out).toContain('POST /d body');
    expect(out).toMatch(/GET \/e $/);
  });

  it("hands a head split across reads to node's server, which answers it as before", async () => {
    const backend = track(await rawBackend((socket, head) => socket.write(ok(head.split(' ')[1] as string))));
    const rig = await rigWith(backend.addr);
    const out = await exchange(rig.router.http.port, ['GET /split HTTP/1.1\r\nHo', 'st: app.test\r\n\r\n', 'GET /after HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n']);
    expect(out).toMatch(/^HTTP\/1.1 200 OK\r\n[\s\S]*\r\n\r\n\/splitHTTP\/1.1 200 OK\r\n[\s\S]*\r\n\r\n\/after$/);
  });

  it('keeps backend connections alive across requests and answers 400 to a malformed request it hands on', async () => {
    const backend = track(await rawBackend((socket, _h, n) => socket.write(ok(`r${n}`))));
    const rig = await rigWith(backend.addr);
    for (let i = 0; i < 5; i++) expect((await get(rig.router.http.url, 'app.test')).status).toBe(200);
    expect(backend.connections).toBe(1);
    const bad = await exchange(rig.router.http.port, 'GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1.1 400 /);
    expect(backend.requests).toHaveLength(5);
  });

  it('times out a backend that stops mid-body with the idle timeout, and answers 504 to one that never answers', async () => {
    const backend = track(await rawBackend((socket, head) => (head.startsWith('GET /stall') ? socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc') : undefined)));
    const rig = await rigWith(backend.addr, { responseHeadersTimeoutMs: 300, idleTimeoutMs: 300 });
    const silent = await get(rig.router.http.url, 'app.test');
    expect(silent.status).toBe(504);
    const stalled = await exchange(rig.router.http.port, 'GET /stall HTTP/1.1\r\nHost: app.test\r\n\r\n');
    expect(stalled).toMatch(/\r\n\r\nabc$/);
  });

  it('retries a GET on a fresh connection when the backend closed the kept one', async () => {
    const backend = track(await rawBackend((socket, _h, n) => (n === 2 ? socket.destroy() : socket.write(ok(`r${n}`)))));
    const rig = await rigWith(backend.addr);
    expect((await get(rig.router.http.url, 'app.test')).body).toBe('r1');
    expect((await get(rig.router.http.url, 'app.test')).body).toBe('r3');
  });

  it('waits for a client that stops reading, then relays the rest of a large body', async () => {
    const big = Buffer.alloc(24 * 1024 * 1024, 'abcdefgh');
    const app = track(await startBackend('app', '127.0.0.2', (_req, res) => res.end(big)));
    const rig = await rigWith(app.addr);
    const received = await new Promise<number>((resolve, reject) => {
      const socket = connect(rig.router.http.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'));
      let n = 0;
      socket.pause();
      setTimeout(() => socket.resume(), 500);
      socket.on('data', (c: Buffer) => (n += c.length));
      socket.on('end', () => resolve(n));
      socket.on('error', reject);
    });
    expect(received).toBeGreaterThan(big.length);
  }, 20_000);
});
