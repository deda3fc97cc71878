/**
 * `npm start` on Docker runs the router as a detached process of its own: a SIGKILL of the platform
 * and a start again on the same data dir is no outage of the apps. A request loop through the
 * router runs the whole time and every request is answered; the restarted platform re-attaches to
 * the same router process (same pid, same ports) instead of starting a second one. Ctrl-C leaves
 * the router serving; `--stop-apps-on-exit` stops it with the apps.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { findRouter, stopRouterProcess } from '../../src/bootstrap/router-process.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { npmStartPorts, requestLoop, serving, startNpmStart, type Running } from '../support/npm-start.js';
import { needDocker } from '../support/services.js';

const HOST = '127.0.0.44';
const APP = 'steady';
/** Answers `<job id> <FOO>` on $PORT. */
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end(process.env.FLYNN_JOB_ID + ' ' + process.env.FOO)).listen(Number(process.env.PORT))`];

describe.runIf(await needDocker('router outliving the platform'))('npm start on Docker: the router outlives the platform', () => {
  let dataDir = '';
  const running: Running[] = [];
  afterAll(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    if (!dataDir) return;
    await stopRouterProcess(dataDir);
    const id = (await readFile(join(dataDir, 'cluster-id'), 'utf8').catch(() => '')).trim();
    const docker = new Docker();
    if (id) for (const c of await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.host=host1-${id}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('serves every request while the platform is SIGKILLed and started again', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-router-outlives-'));
    const { ports, flags, routerUrl } = await npmStartPorts(HOST);
    const args = ['--runtime', 'docker', '--data-dir', dataDir, ...flags];

    const first = await startNpmStart(args);
    running.push(first);
    const router = await findRouter(dataDir);
    expect(router?.pid).toBeGreaterThan(0);
    expect(router?.pid).not.toBe(first.proc.pid);
    expect(router?.http.port).toBe(ports.router);

    const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
    const pin = pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'));
    const client = new ControllerClient({ url: `https://${HOST}:${ports.controller}`, key, tls: { pin } });
    await client.createApp({ name: APP });
    const v1 = await client.createRelease(APP, { env: { FOO: 'steady' }, processes: { web: { cmd: WEB } } });
    await client.waitForDeployment(APP, (await client.deploy(APP, v1.id)).id, { timeoutMs: 60_000 });
    await client.scale(APP, { web: 2 });
    await client.createRoute(APP, { type: 'http', domain: `${APP}.flynn.local`, service: `${APP}-web` });
    await serving(routerUrl, `${APP}.flynn.local`);
    // Both jobs registered and routed to before the load starts.
    const seen = new Set<string>();
    while (seen.size < 2) seen.add((await serving(routerUrl, `${APP}.flynn.local`)).body);
    await client.close();

    const load = requestLoop(routerUrl, `${APP}.flynn.local`);
    await new Promise((r) => setTimeout(r, 500));
    first.proc.kill('SIGKILL');
    await first.exited;
    // The platform is down: the router keeps serving (every request of the loop counts below; this probe
    // gets up to 5 s, as the one after Ctrl-C does: one answer past 1 s on a loaded machine is not a failure).
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await serving(routerUrl, `${APP}.flynn.local`, 5_000)).body).toMatch(/ steady$/);
    const restartAt = Date.now();
    const second = await startNpmStart(args);
    running.push(second);
    const bannerMs = Date.now() - restartAt;
    // Past the grace a restarted platform gives the containers it adopts to register again.
    await new Promise((r) => setTimeout(r, 3_000));
    const { ok, failed, failures } = await load.stop();
    console.log(`[measured] platform SIGKILLed and started again under a request loop: ${ok} requests served, ${failed} failed (banner after ${bannerMs} ms)${failures.length ? `: ${failures.join('; ')}` : ''}`);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(50);
    // Re-attached: the same router process, the same ports, now fed by the new platform run.
    const after = await findRouter(dataDir);
    expect(after?.pid).toBe(router?.pid);
    expect(after?.http.port).toBe(ports.router);
    expect(after?.session).not.toBe(router?.session);
    expect(after?.backends).toBe(2);

    // Ctrl-C stops the platform only: the apps and their router keep serving.
    second.proc.kill('SIGINT');
    expect(await second.exited, second.stdout() + second.stderr()).toBe(0);
    expect((await findRouter(dataDir))?.pid).toBe(router?.pid);
    expect((await serving(routerUrl, `${APP}.flynn.local`, 5_000)).body).toMatch(/ steady$/);
    // With --stop-apps-on-exit, Ctrl-C stops the router with the apps.
    const third = await startNpmStart([...args, '--stop-apps-on-exit']);
    running.push(third);
    expect((await findRouter(dataDir))?.pid).toBe(router?.pid);
    third.proc.kill('SIGINT');
    expect(await third.exited, third.stdout() + third.stderr()).toBe(0);
    expect(await findRouter(dataDir)).toBeNull();
  }, 240_000);
});
