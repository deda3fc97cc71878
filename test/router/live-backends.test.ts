import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { DISCOVERY_BACKENDS, ENGINES, get, rigFor, startBackend, until, type Rig, type TestBackend } from './support.js';

/** Keep-alive load from `workers` loops until `stop()`; counts statuses and errors. */
function load(url: string, host: string, workers = 8) {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  const u = new URL(url);
  const result = { ok: 0, failed: [] as string[], byBackend: new Map<string, number>() };
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: u.hostname, port: u.port, path: '/', headers: { host }, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 200) {
            result.ok++;
            const name = String(res.headers['x-backend']);
            result.byBackend.set(name, (result.byBackend.get(name) ?? 0) + 1);
          } else result.failed.push(`${res.statusCode} ${Buffer.concat(chunks).toString()}`);
          resolve();
        });
      });
      req.on('error', (err) => {
        result.failed.push(err.message);
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) await one();
  });
  return {
    result,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

for (const [backend, engine] of DISCOVERY_BACKENDS.flatMap((b) => ENGINES.map((e) => [b, e] as const))) {
  describe.runIf(await backend.need())(`router (${engine} engine): live backends (${backend.name} discovery)`, () => {
    const startRig = rigFor(engine);
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      while (cleanup.length > 0) await cleanup.pop()?.();
    });
    const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);
    const rig = async () => track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], {}, backend.config()));

    it('loses no request while a backend is added under load, and then sends it traffic', async () => {
      const a = track(await startBackend('a'));
      const b = track(await startBackend('b', '127.0.0.3'));
      const r = await rig();
      await r.register('app-web', a.addr);
      const run = load(r.router.http.url, 'app.test');
      await until(() => run.result.ok > 200);
      await r.register('app-web', b.addr);
      await until(() => (run.result.byBackend.get('b') ?? 0) > 200);
      const result = await run.stop();
      expect(result.failed).toEqual([]);
      expect(result.byBackend.get('a')).toBeGreaterThan(200);
    });

    it('lets requests in flight to a removed backend complete, and sends new ones elsewhere', async () => {
      const slow = track(
        await startBackend('slow', '127.0.0.2', (_req, res) => {
          setTimeout(() => res.end('slow done'), 400);
        }),
      );
      const fast = track(await startBackend('fast', '127.0.0.3'));
      const r = await rig();
      const reg = await r.register('app-web', slow.addr);
      const inflight = Array.from({ length: 5 }, () => get(r.router.http.url, 'app.test'));
      await until(() => slow.hits === 5);
      await reg.unregister();
      await r.register('app-web', fast.addr);
      await until(async () => JSON.parse((await get(r.router.http.url, 'app.test')).body).backend === 'fast');
      // the removed backend shuts down gracefully: it finishes what it has
      const closed = slow.close();
      const results = await Promise.all(inflight);
      await closed;
      expect(results.map((x) => `${x.status} ${x.body}`)).toEqual(Array(5).fill('200 slow done'));
    });

    it('loses no request while a backend is removed and shut down under load', async () => {
      const a = track(await startBackend('a'));
      const b = track(await startBackend('b', '127.0.0.3'));
      const r = await rig();
      await r.register('app-web', a.addr);
      const regB = await r.register('app-web', b.addr);
      const run = load(r.router.http.url, 'app.test');
      await until(() => (run.result.byBackend.get('b') ?? 0) > 100);
      await regB.unregister();
      await b.close();
      const after = run.result.byBackend.get('a') ?? 0;
      await until(() => (run.result.byBackend.get('a') ?? 0) > after + 200);
      const result = await run.stop();
      expect(result.failed).toEqual([]);
    });

    it('retries a request on another backend when one refuses the connection', async () => {
      const gone = await startBackend('gone');
      await gone.close();
      const live = track(await startBackend('live', '127.0.0.3'));
      const r = await rig();
      await r.register('app-web', gone.addr);
      await r.register('app-web', live.addr);
      for (let i = 0; i < 20; i++) {
        const res = await get(r.router.http.url, 'app.test', { method: 'POST', body: 'payload', headers: { 'content-length': '7' } });
        expect(res.status).toBe(200);
      }
      expect(live.hits).toBe(20);
    });

    it('answers 503 when every backend refuses the connection', async () => {
      const gone = await startBackend('gone');
      await gone.close();
      const r = await rig();
      await r.register('app-web', gone.addr);
      const res = await get(r.router.http.url, 'app.test');
      expect(res.status).toBe(503);
      // HAProxy answers a refused connection with the same 503 as an empty backend.
      expect(res.body).toContain(engine === 'node' ? 'no backend of app-web accepted the connection' : 'no live backend for app-web');
    });

    it('spreads requests over the backends', async () => {
      const a = track(await startBackend('a'));
      const b = track(await startBackend('b', '127.0.0.3'));
      // Three: HAProxy 2.6's `balance random` never picked one of three servers added at run time.
      const c = track(await startBackend('c', '127.0.0.4'));
      const r = await rig();
      await r.register('app-web', a.addr);
      await r.register('app-web', b.addr);
      await r.register('app-web', c.addr);
      const run = load(r.router.http.url, 'app.test', 4);
      await until(() => run.result.ok > 600);
      const result = await run.stop();
      for (const name of ['a', 'b', 'c']) expect(result.byBackend.get(name)).toBeGreaterThan(50);
    });
  });
}
