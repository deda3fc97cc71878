import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, startBackend, ENGINES, rigFor, until, type Rig, type TestBackend } from './support.js';
import { freePort } from '../../src/host/testing/jobs.js';
import { createConsoleLogger } from '../../src/common/logger.js';

async function echoServer(host: string, tag: string): Promise<{ server: Server; addr: string; close(): Promise<void> }> {
  const server = createServer((s) => s.on('data', (c: Buffer) => s.write(`${tag}:${c.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    server,
    addr: `${host}:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function talk(port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(message));
    socket.once('data', (c: Buffer) => {
      resolve(c.toString());
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe.each(ENGINES)('router (%s engine): TCP routes and graceful close', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => (cleanup.push(() => x.close()), x);

  it('listens on a TCP route port and spreads connections over the backends', async () => {
    const one = track(await echoServer('127.0.0.2', 'one'));
    const two = track(await echoServer('127.0.0.3', 'two'));
    const port = await freePort('127.0.0.1');
    const r: Rig = track(await startRig([{ id: 'tcp', type: 'tcp', port, service: 'echo' }]));
    await r.register('echo', one.addr);
    await r.register('echo', two.addr);
    const answers = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const answer = await talk(port, 'ping');
      expect(answer).toMatch(/^(one|two):ping$/);
      answers.add(answer);
    }
    expect(answers.size).toBe(2);
    r.routes.remove('tcp');
    await r.router.settled();
    await expect(talk(port, 'ping')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('sends a TCP connection a backend refuses to another one, and follows backend changes without losing the port', async () => {
    const one = track(await echoServer('127.0.0.2', 'one'));
    // A port nothing listens on: connections to it are refused.
    const refused = `127.0.0.3:${await freePort('127.0.0.3')}`;
    const port = await freePort('127.0.0.1');
    const r: Rig = track(await startRig([{ id: 'tcp', type: 'tcp', port, service: 'echo' }]));
    await r.register('echo', refused);
    await r.register('echo', one.addr);
    for (let i = 0; i < 20; i++) expect(await talk(port, 'ping')).toBe('one:ping');
    // The route moves to another service on the same port, and the new backends take the next connections.
    const two = track(await echoServer('127.0.0.4', 'two'));
    await r.register('other', two.addr);
    r.routes.set({ id: 'tcp', type: 'tcp', port, service: 'other' });
    await r.router.settled();
    expect(await talk(port, 'ping')).toBe('two:ping');
  });

  it('leaves out a TCP route whose port another process holds, with an error, and serves the others', async () => {
    const one = track(await echoServer('127.0.0.2', 'one'));
    const taken = track(await echoServer('127.0.0.1', 'squatter'));
    const takenPort = Number(taken.addr.split(':')[1]);
    const port = await freePort('127.0.0.1');
    const errors: string[] = [];
    const logger = createConsoleLogger({ json: true, write: (line) => errors.push(line) });
    const r: Rig = track(await startRig([{ id: 'tcp', type: 'tcp', port, service: 'echo' }], { logger }));
    await r.register('echo', one.addr);
    r.routes.set({ id: 'clash', type: 'tcp', port: takenPort, service: 'echo' });
    await r.router.settled();
    expect(errors.map((l) => JSON.parse(l)).filter((l) => l.level === 'error')).toMatchObject([{ msg: 'tcp route cannot listen', route: 'clash' }]);
    expect(await talk(port, 'ping')).toBe('one:ping');
    expect(await talk(takenPort, 'ping')).toBe('squatter:ping');
  });

  it('keeps an open TCP connection when its route is removed, and frees the port at once', async () => {
    const one = track(await echoServer('127.0.0.2', 'one'));
    const port = await freePort('127.0.0.1');
    const r: Rig = track(await startRig([{ id: 'tcp', type: 'tcp', port, service: 'echo' }]));
    await r.register('echo', one.addr);
    const socket = connect(port, '127.0.0.1');
    const next = () => new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
    socket.write('a');
    expect(await next()).toBe('one:a');
    r.routes.remove('tcp');
    await r.router.settled();
    socket.write('b');
    expect(await next()).toBe('one:b');
    // the port is free again: a new route may take it while the old connection lives
    r.routes.set({ id: 'tcp2', type: 'tcp', port, service: 'echo' });
    await r.router.settled();
    expect(await talk(port, 'c')).toBe('one:c');
    socket.destroy();
  });

  it('lets an open TCP connection finish on close, and closes once it ends', async () => {
    const one = track(await echoServer('127.0.0.2', 'one'));
    const port = await freePort('127.0.0.1');
    const r = await startRig([{ id: 'tcp', type: 'tcp', port, service: 'echo' }]);
    await r.register('echo', one.addr);
    const socket = connect(port, '127.0.0.1');
    const next = () =>
      new Promise<string>((resolve, reject) => {
        socket.once('data', (c: Buffer) => resolve(c.toString()));
        socket.once('close', () => reject(new Error('the router cut the connection')));
      });
    socket.write('a');
    expect(await next()).toBe('one:a');
    let closed = false;
    const closing = r.close().then(() => (closed = true));
    socket.write('b');
    expect(await next()).toBe('one:b');
    expect(closed).toBe(false);
    socket.end();
    await closing;
  });

  it('finishes in-flight requests on close, then stops accepting', async () => {
    const slow: TestBackend = track(await startBackend('slow', '127.0.0.2', (_req, res) => setTimeout(() => res.end('finished'), 300)));
    const r = await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }]);
    await r.register('app-web', slow.addr);
    const url = r.router.http.url;
    const pending = get(url, 'app.test');
    // inFlight() counts the node engine's requests only.
    await until(() => slow.hits === 1 && (engine === 'haproxy' || r.router.inFlight() === 1));
    const closing = r.close();
    // HAProxy lets its listener go a moment after the soft-stop signal, in its own process.
    if (engine === 'haproxy') await until(() => get(url, 'app.test').then(() => false, (err: Error) => /ECONNREFUSED/.test(err.message)), 2000);
    else await expect(get(url, 'app.test')).rejects.toThrow(/ECONNREFUSED/);
    expect(await pending).toMatchObject({ status: 200, body: 'finished' });
    await closing;
    await r.close();
    expect(r.router.inFlight()).toBe(0);
  });
});
