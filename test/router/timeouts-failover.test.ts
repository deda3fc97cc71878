import { spawn } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/common/logger.js';
import type { HttpRoute } from '../../src/router/index.js';
import { StickySigner } from '../../src/router/sticky.js';
import { get, startBackend, ENGINES, rigFor, until, type Rig, type TestBackend } from './support.js';

/** A TCP server that accepts connections and then does what `onConn` says (never answer, reset...). */
async function rawBackend(onConn: (socket: Socket) => void, host = '127.0.0.5'): Promise<{ server: Server; addr: string; accepted: number; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const out = { server: createServer(), addr: '', accepted: 0, close: () => Promise.resolve() };
  out.server.on('connection', (socket) => {
    out.accepted++;
    open.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => open.delete(socket));
    onConn(socket);
  });
  await new Promise<void>((resolve) => out.server.listen(0, host, resolve));
  out.addr = `${host}:${(out.server.address() as { port: number }).port}`;
  out.close = () =>
    new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      out.server.close(() => resolve());
    });
  return out;
}

/** Write raw bytes to the router and read until it closes (or `ms` pass). */
function raw(port: number, text: string, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    const timer = setTimeout(() => (socket.destroy(), resolve(out)), ms);
    socket.on('data', (c: Buffer) => (out += c.toString()));
    socket.on('close', () => (clearTimeout(timer), resolve(out)));
    socket.on('error', reject);
  });
}

const route = (extra: Partial<HttpRoute> = {}): HttpRoute => ({ id: 'app', type: 'http', domain: 'app.example.com', service: 'app-web', ...extra });

describe.each(ENGINES)('router (%s engine): timeouts', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => (cleanup.push(() => x.close()), x);

  it('answers 504 to a GET, a POST and an Upgrade when the backend accepts and never answers', async () => {
    const silent = track(await rawBackend(() => undefined));
    const rig = track(await startRig([route({ timeouts: { responseHeadersMs: 300 } })]));
    await rig.register('app-web', silent.addr);
    for (const options of [{}, { method: 'POST', body: 'x'.repeat(1000) }]) {
      const started = Date.now();
      const res = await get(rig.router.http.url, 'app.example.com', options);
      expect(res.status).toBe(504);
      expect(res.body).toBe(engine === 'node' ? `504 Gateway Timeout: backend ${silent.addr} did not answer in time\n` : '504 Gateway Timeout: backend of app-web did not answer in time\n');
      expect(Date.now() - started).toBeLessThan(3000);
    }
    const answer = await raw(rig.router.http.port, 'GET /ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 504 Gateway Time-?out\r\n[\s\S]*did not answer in time\n$/);
  });

  // On the haproxy engine the route's connect timeout is its slot's `timeout connect`, declared by a reload.
  it('gives up a connection that is not up within the connect timeout: another backend takes the request, else 504', async () => {
    // A listener whose accept queue is full (python never accepts): further SYNs go unanswered.
    const py = spawn('python3', ['-c', "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.8',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)"], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => void py.kill('SIGKILL'));
    const port = await new Promise<number>((resolve) => py.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))));
    const filler = connect(port, '127.0.0.8');
    cleanup.push(async () => void filler.destroy());
    await new Promise((resolve) => filler.once('connect', resolve));
    const blackhole = `127.0.0.8:${port}`;
    const key = 'k'.repeat(32);
    const good = track(await startBackend('good'));
    const rig = track(await startRig([route({ sticky: true, timeouts: { connectMs: 300 } })], { stickyKey: key }));
    await rig.register('app-web', blackhole);
    await rig.register('app-web', good.addr);
    // A cookie pinning the client to the unreachable backend: its POST goes to the other one.
    const cookie = `_backend=${new StickySigner(Buffer.from(key)).sign('app', blackhole)}`;
    let started = Date.now();
    const moved = await get(rig.router.http.url, 'app.example.com', { method: 'POST', body: 'payload', headers: { cookie } });
    expect(moved.status).toBe(200);
    expect(JSON.parse(moved.body).backend).toBe('good');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // With no other backend: 504 once the connect timeout passed.
    const lonely = track(await startRig([route({ timeouts: { connectMs: 300 } })]));
    await lonely.register('app-web', blackhole);
    started = Date.now();
    const alone = await get(lonely.router.http.url, 'app.example.com', { method: 'POST', body: 'payload' });
    // HAProxy answers a connect that failed on every try (refused or timed out) with 503.
    expect(alone.status).toBe(engine === 'node' ? 504 : 503);
    expect(alone.body).toBe(engine === 'node' ? '504 Gateway Timeout: no backend of app-web accepted the connection in time\n' : '503 Service Unavailable: no live backend for app-web\n');
    expect(Date.now() - started).toBeLessThan(3000); // the timeout under test, with a 10× margin
  });

  it('applies the router-wide response-headers timeout when the route has none', async () => {
    const silent = track(await rawBackend(() => undefined));
    const rig = track(await startRig([route()], { responseHeadersTimeoutMs: 200 }));
    await rig.register('app-web', silent.addr);
    expect((await get(rig.router.http.url, 'app.example.com')).status).toBe(504);
  });

  it('answers 504 when a request body stalls longer than the idle timeout', async () => {
    let received = 0;
    const backend = track(await startBackend('app', '127.0.0.2', (req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end('whole body'));
    }));
    const rig = track(await startRig([route({ timeouts: { idleMs: 300 } })]));
    await rig.register('app-web', backend.addr);
    const answer = await raw(rig.router.http.port, 'POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 100\r\n\r\n0123456789', 1500);
    // HAProxy's reason phrase is `Gateway Time-out`.
    expect(answer).toMatch(/^HTTP\/1.1 504 Gateway Time-?out\r\n/);
    expect(received).toBe(10);
  });

  it('closes an upgraded connection after the WebSocket idle timeout, and keeps a busy one', async () => {
    const ws = track(await rawBackend((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'));
      socket.on('data', (c: Buffer) => {
        if (c.toString() === 'ping') socket.write('pong');
      });
    }));
    const rig = track(await startRig([route({ timeouts: { websocketIdleMs: 1000 } })]));
    await rig.register('app-web', ws.addr);
    const socket = connect(rig.router.http.port, '127.0.0.1');
    socket.write('GET /ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString()));
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    await until(() => out.includes('101'));
    const upgradedAt = Date.now();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 200));
      socket.write('ping');
    }
    await until(() => out.split('pong').length === 5);
    const quietFrom = Date.now();
    const closedAt = await closed;
    // Kept while busy: it lasts the 800 ms of pings plus the 1 s idle timeout only if each ping resets the
    // timer (without, it closes at 1 s; a timer never fires early). The timeout is 5× the gap between pings
    // so that a loaded machine pausing this process between two of them does not end the connection (at
    // 400 ms, a 300 ms pause did). Then closed by the idle timeout after the last pong (the bound: the
    // timeout under test, with a 10× margin).
    expect(closedAt - upgradedAt).toBeGreaterThanOrEqual(800 + 950);
    expect(closedAt - quietFrom).toBeLessThan(10_000);
  });

  it('rejects invalid timeouts in routes and options', async () => {
    const { validateRoute } = await import('../../src/router/index.js');
    expect(() => validateRoute(route({ timeouts: { connectMs: 0 } }))).toThrow(/timeouts.connectMs/);
    expect(() => validateRoute({ ...route(), timeouts: { nope: 1 } })).toThrow(/unknown timeout "nope"/);
    expect(validateRoute(route({ timeouts: { idleMs: 5 } }))).toMatchObject({ timeouts: { idleMs: 5 } });
    await expect(startRig([], { connectTimeoutMs: 0 })).rejects.toThrow(/connectTimeoutMs/);
  });
});

describe.each(ENGINES)('router (%s engine): failover and ejection', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend | { close(): Promise<void> }>(x: T): T => (cleanup.push(() => x.close()), x);

  it('sends a GET whose connection is reset to another backend, answers 502 to a POST, and ejects the resetting backend', async () => {
    const resetting = track(await rawBackend((socket) => socket.once('data', () => socket.resetAndDestroy())));
    const good = track(await startBackend('good'));
    const rig = track(await startRig([route()], { baseEjectionMs: 60_000 }));
    await rig.register('app-web', resetting.addr);
    await rig.register('app-web', good.addr);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await get(rig.router.http.url, 'app.example.com')).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Ejected after 3 resets in a row: no later request reaches it (the haproxy engine reads HAProxy's error counters
    // every 200 ms, so a few more may reach it before: docs/router.md#engines).
    if (engine === 'node') expect(resetting.accepted).toBeLessThanOrEqual(3);
    else {
      await until(async () => {
        const before = resetting.accepted;
        for (let i = 0; i < 5; i++) expect((await get(rig.router.http.url, 'app.example.com')).status).toBe(200);
        return resetting.accepted === before;
      }, 5000);
    }
    const seen = resetting.accepted;
    for (let i = 0; i < 10; i++) expect((await get(rig.router.http.url, 'app.example.com', { method: 'POST', body: 'x' })).status).toBe(200);
    expect(resetting.accepted).toBe(seen);
  });

  it('sends a GET on to a third backend when two close without answering (two old jobs stopping at once in a deploy)', async () => {
    const closing = [0, 1].map(async () => track(await rawBackend((socket) => socket.once('data', () => socket.resetAndDestroy()))));
    const [a, b] = await Promise.all(closing);
    const good = track(await startBackend('good'));
    // Never ejected here: every request meets both closing backends with equal chances.
    const rig = track(await startRig([route()], { ejectAfterFailures: 1000 }));
    for (const backend of [a, b, good]) await rig.register('app-web', backend?.addr ?? '');
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await get(rig.router.http.url, 'app.example.com')).status);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Some requests did meet both before the good one.
    expect((a?.accepted ?? 0) + (b?.accepted ?? 0)).toBeGreaterThan(0);
  });

  it('keeps a backend ejected again soon after it returned out twice as long each time', async () => {
    // A backend that resets every request: a TCP probe passes, so it returns after each interval and is ejected again.
    const resetting = track(await rawBackend((socket) => socket.once('data', () => socket.resetAndDestroy())));
    const good = track(await startBackend('good'));
    const ejections: { ms: number; at: number }[] = [];
    const note = (msg: string, fields?: Record<string, unknown>) => {
      const who = String(fields?.addr ?? fields?.server ?? '');
      // The node engine names the backend's address; the haproxy engine its slot/server (only the resetting one is ejected).
      if (/backend ejected/.test(msg) && (engine === 'haproxy' || who === resetting.addr)) ejections.push({ ms: Number(fields?.ms), at: Date.now() });
    };
    const logger: Logger = { debug: () => undefined, info: note, warn: () => undefined, error: () => undefined, child: () => logger };
    const rig = track(await startRig([route()], { baseEjectionMs: 200, maxEjectionMs: 60_000, logger }));
    await rig.register('app-web', resetting.addr);
    await rig.register('app-web', good.addr);
    await until(async () => {
      expect((await get(rig.router.http.url, 'app.example.com')).status).toBe(200);
      return ejections.length >= 3;
    }, 30_000);
    expect(ejections.slice(0, 3).map((e) => e.ms)).toEqual([200, 400, 800]);
    // Out for at least the second interval (a lower bound: a timer never fires early; the first one is HAProxy's own check on that engine).
    expect((ejections[2] as { at: number }).at - (ejections[1] as { at: number }).at).toBeGreaterThanOrEqual(400);
  });

  // The node engine keeps using a lone ejected backend (panic mode); HAProxy sends 503 while it is out, so the haproxy
  // engine does not hold the last server of a route out for longer and longer.
  it.skipIf(engine === 'node')('does not hold a route\'s last backend out longer when it is ejected again', async () => {
    const resetting = track(await rawBackend((socket) => socket.once('data', () => socket.resetAndDestroy())));
    const ejections: number[] = [];
    const logger: Logger = { debug: () => undefined, info: (msg, fields) => void (/backend ejected/.test(msg) && ejections.push(Number(fields?.ms))), warn: () => undefined, error: () => undefined, child: () => logger };
    const rig = track(await startRig([route()], { baseEjectionMs: 200, maxEjectionMs: 60_000, logger }));
    await rig.register('app-web', resetting.addr);
    await until(async () => {
      await get(rig.router.http.url, 'app.example.com');
      return ejections.length >= 3;
    }, 30_000);
    expect(ejections.slice(0, 3)).toEqual([200, 200, 200]);
  });

  it('answers 502 to a POST whose connection is reset (not idempotent: never sent twice)', async () => {
    const resetting = track(await rawBackend((socket) => socket.once('data', () => socket.resetAndDestroy())));
    const rig = track(await startRig([route()]));
    await rig.register('app-web', resetting.addr);
    const res = await get(rig.router.http.url, 'app.example.com', { method: 'POST', body: 'once' });
    expect(res.status).toBe(502);
    expect(resetting.accepted).toBe(1);
  });

  it('takes a backend whose health check fails out of rotation, and back once it passes again', async () => {
    let sick = true;
    const checks: string[] = [];
    const flaky = track(await startBackend('flaky', '127.0.0.2', (req, res) => {
      if (req.url === '/health') {
        checks.push(String(req.headers.host));
        res.statusCode = sick ? 503 : 200;
        return res.end();
      }
      res.end('flaky');
    }));
    const good = track(await startBackend('good', '127.0.0.3', (_req, res) => res.end('good')));
    const rig = track(await startRig([route({ healthCheck: { path: '/health', intervalMs: 100 } })], { baseEjectionMs: 200 }));
    await rig.register('app-web', flaky.addr);
    await rig.register('app-web', good.addr);
    await until(() => checks.length >= 2);
    expect(checks[0]).toBe('app.example.com');
    const bodies = new Set<string>();
    for (let i = 0; i < 20; i++) bodies.add((await get(rig.router.http.url, 'app.example.com')).body);
    expect([...bodies]).toEqual(['good']);
    sick = false;
    await until(async () => (await get(rig.router.http.url, 'app.example.com')).body === 'flaky', 5000);
  });

  // Node engine only: HAProxy 2.6 lets a check run min(connectMs, intervalMs) + timeoutMs (docs/router.md#known-gaps).
  it.skipIf(engine === 'haproxy')("ejects a backend whose health check answers later than the check's timeoutMs (shorter than its interval)", async () => {
    let delay = 500;
    const slow = track(await startBackend('slow', '127.0.0.2', (req, res) => {
      if (req.url === '/health') return void setTimeout(() => res.end(), delay);
      res.end('slow');
    }));
    const good = track(await startBackend('good', '127.0.0.3', (_req, res) => res.end('good')));
    const rig = track(await startRig([route({ healthCheck: { path: '/health', intervalMs: 1000, timeoutMs: 200 } })], { baseEjectionMs: 200 }));
    await rig.register('app-web', slow.addr);
    await rig.register('app-web', good.addr);
    const only = async (body: string) => (await Promise.all(Array.from({ length: 10 }, () => get(rig.router.http.url, 'app.example.com')))).every((r) => r.body === body);
    await until(() => only('good'), 20_000);
    delay = 0;
    await until(async () => (await get(rig.router.http.url, 'app.example.com')).body === 'slow', 10_000);
  });

  it('loses no GET when a backend process is SIGKILLed, and takes it back once it listens again', async () => {
    const good = track(await startBackend('good'));
    const child = spawn(process.execPath, ['-e', "require('http').createServer((q,s)=>s.end('child')).listen(0,'127.0.0.6',function(){console.log(this.address().port)})"], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => void child.kill('SIGKILL'));
    const port = await new Promise<number>((resolve) => child.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))));
    const rig = track(await startRig([route()], { baseEjectionMs: 300 }));
    await rig.register('app-web', `127.0.0.6:${port}`);
    await rig.register('app-web', good.addr);
    const bodies = new Set<string>();
    for (let i = 0; i < 20; i++) bodies.add((await get(rig.router.http.url, 'app.example.com')).body);
    expect(bodies.has('child')).toBe(true);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    // 200 concurrent requests right after the kill: none fails.
    const results = await Promise.all(Array.from({ length: 200 }, () => get(rig.router.http.url, 'app.example.com').then((r) => r.status)));
    expect(results.filter((s) => s !== 200)).toEqual([]);
    // It comes back on the same port: the probe after its ejection puts it back in rotation.
    const again = createHttpServer((_req, res) => res.end('again'));
    await new Promise<void>((resolve) => again.listen(port, '127.0.0.6', resolve));
    cleanup.push(() => new Promise<void>((resolve) => (again.close(() => resolve()), again.closeAllConnections())));
    await until(async () => (await get(rig.router.http.url, 'app.example.com')).body === 'again', 5000);
  });
});
