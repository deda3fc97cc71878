/** The haproxy engine's reloads (a TCP port or a slot setting): no request lost, no state lost, no orphan HAProxy. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createConsoleLogger } from '../../src/common/logger.js';
import { selfSignedCertificate } from '../../src/router/certificate.js';
import { freePort } from '../../src/host/testing/jobs.js';
import { needHaproxy } from '../support/services.js';
import { descendants, running } from '../support/processes.js';
import { get, rigFor, startBackend, until, type Rig } from './support.js';

async function echoServer(host: string, tag: string): Promise<{ addr: string; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server = createServer((s) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => s.write(`${tag}:${c.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    addr: `${host}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A new connection to a TCP route, one message and its echo. */
function talk(port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(message));
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
    socket.once('data', (c: Buffer) => {
      resolve(c.toString());
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** The certificate's CN served for `servername`, and the answer's status. */
function fetchTls(port: number, servername: string): Promise<{ cn: string; status: number }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername, headers: { host: servername }, rejectUnauthorized: false, agent: false }, (res) => {
      const cn = String((res.socket as TLSSocket).getPeerCertificate().subject.CN);
      res.resume();
      res.on('end', () => resolve({ cn, status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Run `step` over and over until `stop()`; counts answers that pass `ok` and failures (with the first errors). */
function loop(step: () => Promise<boolean>) {
  const out = { ok: 0, failed: 0, errors: [] as string[], stopped: false, done: Promise.resolve() };
  out.done = (async () => {
    while (!out.stopped) {
      try {
        if (await step()) out.ok++;
        else out.failed++;
      } catch (err) {
        out.failed++;
        if (out.errors.length < 5) out.errors.push((err as Error).message);
      }
    }
  })();
  return out;
}

if (await needHaproxy('router haproxy engine reloads')) {
  describe('router (haproxy engine): reloads', () => {
    vi.setConfig({ testTimeout: 60_000, hookTimeout: 20_000 });
    const startRig = rigFor('haproxy');
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      while (cleanup.length > 0) await cleanup.pop()?.();
    });
    const track = <T extends { close(): Promise<void> }>(x: T): T => (cleanup.push(() => x.close()), x);

    it('loses no HTTP request or TCP connection across six reloads, and keeps routes, backends, certificates and sticky sessions', async () => {
      const lines: string[] = [];
      const logger = createConsoleLogger({ json: true, level: 'debug', write: (line) => lines.push(line) });
      const reloads = () => lines.map((l) => JSON.parse(l) as { msg: string; ms?: number }).filter((l) => l.msg === 'haproxy reloaded');
      const one = track(await startBackend('one'));
      const two = track(await startBackend('two', '127.0.0.3'));
      const echo = track(await echoServer('127.0.0.2', 'echo'));
      const tls = await selfSignedCertificate(['app.test']);
      const tcpPort = await freePort('127.0.0.1');
      const app = { id: 'app', type: 'http', domain: 'app.test', service: 'app-web', sticky: true, tls } as const;
      const rig: Rig = track(
        await startRig(
          [
            app,
            { id: 'tcp', type: 'tcp', port: tcpPort, service: 'echo' },
          ],
          { https: { host: '127.0.0.1', port: 0 }, logger },
        ),
      );
      await rig.register('app-web', one.addr);
      await rig.register('app-web', two.addr);
      await rig.register('echo', echo.addr);
      const started = reloads().length;
      const url = rig.router.http.url;
      const https = rig.router.https?.port as number;
      // A sticky client: its cookie names one backend, before and after the reloads.
      const first = await get(url, 'app.test');
      const cookie = String(first.headers['set-cookie']?.[0]).split(';')[0] as string;
      const pinned = first.headers['x-backend'];

      // One long TCP stream, and loops of new HTTP, HTTPS and TCP connections, all through the reloads.
      const stream = connect(tcpPort, '127.0.0.1');
      await new Promise((resolve) => stream.once('connect', resolve));
      let echoed = '';
      stream.on('data', (c: Buffer) => (echoed += c.toString()));
      let sent = 0;
      const streaming = setInterval(() => stream.write(`${sent++},`), 5);
      const http = loop(async () => (await get(url, 'app.test', { headers: { cookie } })).headers['x-backend'] === pinned);
      const secure = loop(async () => (await fetchTls(https, 'app.test')).cn === 'app.test');
      const tcp = loop(async () => (await talk(tcpPort, 'x')) === 'echo:x');

      // Each step is a reload: a TCP port added, a route's connect timeout (a new route, and the one in use), the port removed.
      const extra = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
      for (const port of extra) {
        rig.routes.set({ id: `tcp-${port}`, type: 'tcp', port, service: 'echo' });
        await rig.router.settled();
        expect(await talk(port, 'y')).toBe('echo:y');
      }
      rig.routes.set({ id: 'slow', type: 'http', domain: 'slow.test', service: 'app-web', timeouts: { connectMs: 700 } });
      await rig.router.settled();
      expect((await get(url, 'slow.test')).status).toBe(200);
      // The route in use moves to a slot declared with its timeout: its sticky client sees no gap.
      rig.routes.set({ ...app, timeouts: { connectMs: 800 } });
      await rig.router.settled();
      for (const port of extra) {
        rig.routes.remove(`tcp-${port}`);
        await rig.router.settled();
        await expect(talk(port, 'y')).rejects.toThrow(/ECONNREFUSED/);
      }
      // A backend added after the reloads reaches the new worker through the Runtime API.
      const three = track(await startBackend('three', '127.0.0.4'));
      await rig.register('app-web', three.addr);
      await until(async () => (await get(url, 'app.test')).headers['x-backend'] === 'three');

      for (const l of [http, secure, tcp]) l.stopped = true;
      await Promise.all([http.done, secure.done, tcp.done]);
      clearInterval(streaming);
      await until(() => echoed.endsWith(`${sent - 1},`));
      stream.destroy();

      const done = reloads().slice(started);
      expect(done.length).toBe(6);
      expect({ http: http.failed, https: secure.failed, tcp: tcp.failed, errors: [...http.errors, ...secure.errors, ...tcp.errors] }).toEqual({ http: 0, https: 0, tcp: 0, errors: [] });
      expect(Math.min(http.ok, secure.ok, tcp.ok)).toBeGreaterThan(done.length);
      // Every byte of the stream came back, in order, through one connection that lived through every reload.
      expect(echoed.replace(/echo:/g, '')).toBe(Array.from({ length: sent }, (_, i) => `${i},`).join(''));
      console.log(`reloads: ${done.map((r) => r.ms).join(', ')} ms; during them ${http.ok} HTTP, ${secure.ok} HTTPS, ${tcp.ok} TCP connections and ${sent} stream messages, 0 failed`);
    });

    it('stops HAProxy, its old workers included, when the router process is SIGKILLed', async () => {
      const echo = track(await echoServer('127.0.0.2', 'echo'));
      const [a, b] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/router/support-haproxy-router.ts', String(a), String(b), echo.addr], { stdio: ['pipe', 'pipe', 'inherit'] });
      cleanup.push(async () => void child.kill('SIGKILL'));
      const said = (what: string) => new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => c.toString().includes(what) && resolve()));
      await said('ready');
      // A connection open across a reload keeps the old worker alive.
      const stream = connect(a, '127.0.0.1');
      cleanup.push(async () => void stream.destroy());
      stream.write('1');
      await new Promise((resolve) => stream.once('data', resolve));
      child.stdin.write('reload\n');
      await said('reloaded');
      expect(await talk(b, 'z')).toBe('echo:z');
      const haproxy = descendants(child.pid as number).filter((p) => p.command === 'haproxy');
      // The master, the new worker and the old one still serving the stream.
      expect(haproxy.length).toBe(3);
      // A SIGKILLed router cannot remove HAProxy's temp dir: the test does.
      const argv = readFileSync(`/proc/${haproxy[0]?.pid}/cmdline`, 'utf8').split('\0');
      cleanup.push(() => rm(dirname(argv[argv.indexOf('-f') + 1] as string), { recursive: true, force: true }));
      child.kill('SIGKILL');
      await until(() => haproxy.every((p) => !running(p.pid)), 10_000);
    });
  });
}
