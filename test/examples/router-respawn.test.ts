/**
 * The detached router is started again while the platform runs: `npm start` (process runtime, a
 * data dir) serves an app through its router process; that process is SIGKILLed under a request
 * loop, and the platform starts a new one on the same port within seconds, which serves the app
 * again (from its saved snapshot, then the platform's). The platform's log says so. Then both the
 * platform and the router are killed: the next start brings the router back from its saved
 * snapshot first.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { findRouter } from '../../src/bootstrap/router-process.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { endNpmStart, npmStartPorts, requestLoop, serving, startNpmStart, type Running } from '../support/npm-start.js';

const HOST = '127.0.0.46';
const APP = 'respawned';
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end('up ' + process.env.FLYNN_JOB_ID)).listen(Number(process.env.PORT))`];

describe('npm start: a router process that dies is started again', () => {
  let dataDir = '';
  let running: Running | undefined;
  afterAll(() => endNpmStart(running, dataDir), 60_000);

  it('answers through the same port again after a SIGKILL of the router process', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-router-respawn-'));
    const { ports, flags, routerUrl } = await npmStartPorts(HOST);
    const args = ['--runtime', 'process', '--data-dir', dataDir, ...flags];
    running = await startNpmStart(args);

    const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
    const pin = pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'));
    const client = new ControllerClient({ url: `https://${HOST}:${ports.controller}`, key, tls: { pin } });
    await client.createApp({ name: APP });
    const release = await client.createRelease(APP, { processes: { web: { cmd: WEB } } });
    await client.waitForDeployment(APP, (await client.deploy(APP, release.id)).id, { timeoutMs: 60_000 });
    await client.createRoute(APP, { type: 'http', domain: `${APP}.flynn.local`, service: `${APP}-web` });
    const before = await serving(routerUrl, `${APP}.flynn.local`);
    const router = await findRouter(dataDir);
    expect(router?.pid).toBeGreaterThan(0);

    const load = requestLoop(routerUrl, `${APP}.flynn.local`);
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = Date.now();
    process.kill(router?.pid as number, 'SIGKILL');
    // The platform notices and starts a new router process on the same port.
    const again = await serving(routerUrl, `${APP}.flynn.local`, 20_000);
    const gapMs = again.at - killedAt;
    await new Promise((r) => setTimeout(r, 500));
    const { ok, failed } = await load.stop();
    console.log(`[measured] router process SIGKILLed: answering again after ${gapMs} ms; ${ok} requests served, ${failed} failed during the gap`);
    expect(again.body).toBe(before.body);
    const respawned = await findRouter(dataDir);
    expect(respawned?.pid).not.toBe(router?.pid);
    expect(respawned?.http.port).toBe(ports.router);
    expect(respawned?.routes).toBe(1);
    expect(running.stderr()).toMatch(/router process is gone/);
    // The new router serves as soon as it listens; the platform says so once its control socket answers, a moment later.
    await vi.waitFor(() => expect(running?.stderr()).toMatch(/started the router process again/), { timeout: 10_000, interval: 50 });

    // Routes made after the respawn reach the new router (the platform feeds it).
    await client.createRoute(APP, { type: 'http', domain: `other.${APP}.flynn.local`, service: `${APP}-web` });
    expect((await serving(routerUrl, `other.${APP}.flynn.local`, 10_000)).body).toBe(before.body);
    await client.close();
    // The router saves a snapshot just after applying it: kill it once the new route is on disk too.
    await vi.waitFor(
      async () => {
        const saved = JSON.parse(await readFile(join(dataDir, 'router-snapshot.json'), 'utf8')) as { routes: unknown[] };
        expect(saved.routes).toHaveLength(2);
      },
      { timeout: 30_000, interval: 100 },
    );

    // Every flynn-ts process killed: the next start brings the router back from its saved config
    // and snapshot before the platform loads, and the platform re-attaches to it.
    const last = await findRouter(dataDir);
    running.proc.kill('SIGKILL');
    process.kill(last?.pid as number, 'SIGKILL');
    await running.exited;
    running = await startNpmStart(args);
    const log = await readFile(join(dataDir, 'router.log'), 'utf8');
    expect(log.slice(log.lastIndexOf('"serving the saved snapshot"'))).toMatch(/"routes":2/);
    expect((await findRouter(dataDir))?.routes).toBe(2);
    // Process jobs die with the platform: the app answers once its job is started again.
    expect((await serving(routerUrl, `${APP}.flynn.local`, 30_000)).body).toMatch(/^up /);
  }, 180_000);
});
