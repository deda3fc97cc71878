/**
 * `npm start` (examples/cluster/main.ts, on the process runtime and on Docker) SIGKILLed right
 * after each step of an all-at-once and of a one-by-one deploy is committed
 * (test/support/kill-at-deploy-step.ts hooks the step's diagnostics channel event) and started again on the same data dir: the deploy is
 * rolled back when its new release was not up yet, finished when it was; either way exactly one
 * release's formation and jobs are left, the app's release is that one, the router serves it, and
 * a later deploy works. A request loop through the router (a process of its own that outlives
 * each kill) runs throughout: on Docker, where the containers are adopted, none may fail.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import type { DeploymentStrategy, Release } from '../../src/controller/types.js';
import { fixedPort, requestLoop, serving, startNpmStart, type Running, stopWhatOutlives } from '../support/npm-start.js';
import { needDocker } from '../support/services.js';

const APP = 'killed';
/** Answers `<job id> <FOO>` on $PORT. */
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end(process.env.FLYNN_JOB_ID + ' ' + process.env.FOO)).listen(Number(process.env.PORT))`];

/** Where the platform is killed, and which release must be left serving after the restart. */
const CASES: Array<{ strategy: DeploymentStrategy; at: string; left: 'old' | 'new' }> = [
  { strategy: 'all-at-once', at: 'pending', left: 'old' },
  { strategy: 'all-at-once', at: 'starting-new', left: 'old' },
  { strategy: 'all-at-once', at: 'new-up', left: 'new' },
  { strategy: 'all-at-once', at: 'stopping-old', left: 'new' },
  // web=2, one-by-one: #1 new web=1, #2 old web=1, #3 new web=2, #4 old web=0 (the new release up at full
  // scale: finished, since a rollback would leave nothing serving until the old jobs are up again).
  { strategy: 'one-by-one', at: 'starting-new#2', left: 'old' },
  { strategy: 'one-by-one', at: 'starting-new#4', left: 'new' },
  { strategy: 'one-by-one', at: 'new-up', left: 'new' },
];

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const got = await check();
      if (got !== undefined) return got;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One release's formation (web=2) and jobs, the app's release being it, and the router serving it alone. */
async function expectServing(client: ControllerClient, routerUrl: string, release: Release): Promise<void> {
  expect((await client.getApp(APP)).releaseId).toBe(release.id);
  expect((await client.listFormations(APP)).map((f) => [f.releaseId, f.processes])).toEqual([[release.id, { web: 2 }]]);
  const foo = release.env.FOO ?? '';
  await until(`2 up jobs of ${foo} and no other`, async () => {
    const jobs = (await client.listJobs(APP)).filter((j) => j.state === 'up' || j.state === 'starting');
    return jobs.length === 2 && jobs.every((j) => j.releaseId === release.id && j.state === 'up') ? true : undefined;
  });
  await serving(routerUrl, `${APP}.flynn.local`, 30_000, (body) => body.endsWith(` ${foo}`));
  for (let i = 0; i < 10; i++) expect((await serving(routerUrl, `${APP}.flynn.local`, 5_000)).body).toMatch(new RegExp(` ${foo}$`));
}

function describeKill(runtime: 'process' | 'docker', host: string) {
  describe(`npm start on the ${runtime} runtime SIGKILLed at each step of a deploy, started again on its data dir`, () => {
    let dataDir = '';
    const running: Running[] = [];
    afterAll(async () => {
      for (const r of running) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
      if (dataDir) await stopWhatOutlives(dataDir);
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }, 60_000);

    it('rolls back a deploy whose new release was not up, finishes one whose was, and deploys again afterwards', async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-deploy-kill-'));
      const ports = { controller: await fixedPort(host), router: await fixedPort(host), git: await fixedPort(host), shelf: await fixedPort(host) };
      const args = ['--runtime', runtime, '--host', host, '--data-dir', dataDir, '--router-https-port', '0', '--controller-port', String(ports.controller), '--router-port', String(ports.router), '--git-port', String(ports.git), '--shelf-port', String(ports.shelf)];
      const routerUrl = `http://${host}:${ports.router}`;
      const start = async (killAt?: string) => {
        const r = await startNpmStart(args, killAt ? { preload: ['test/support/kill-at-deploy-step.ts'], env: { FLYNN_TEST_KILL_AT: killAt } } : {});
        running.push(r);
        return r;
      };

      const setup = await start();
      const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
      const pin = pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'));
      const client = new ControllerClient({ url: `https://${host}:${ports.controller}`, key, tls: { pin } });
      await client.createApp({ name: APP });
      await client.createRoute(APP, { type: 'http', domain: `${APP}.flynn.local`, service: `${APP}-web` });
      let current = await client.createRelease(APP, { env: { FOO: 'v1' }, processes: { web: { cmd: WEB } } });
      await client.waitForDeployment(APP, (await client.deploy(APP, current.id)).id, { timeoutMs: 60_000 });
      await client.scale(APP, { web: 2 });
      await expectServing(client, routerUrl, current);
      setup.proc.kill('SIGKILL');
      await setup.exited;
      // Requests through the router the whole time: the router process outlives each kill, and the
      // jobs do too (containers and detached processes are adopted): no request fails on either runtime.
      const load = requestLoop(routerUrl, `${APP}.flynn.local`);

      let failedBefore = 0;
      for (const [i, c] of CASES.entries()) {
        const r = await start(c.at);
        await expectServing(client, routerUrl, current);
        await client.updateApp(APP, { strategy: c.strategy });
        // Killed at `pending`, the platform dies before it answers.
        await client.setEnv(APP, { FOO: `v${i + 2}` }).catch(() => undefined);
        const killed = await Promise.race([r.exited.then(() => r.proc.signalCode), new Promise((res) => setTimeout(() => res('not killed'), 60_000))]);
        expect(killed, `${c.strategy} at ${c.at}`).toBe('SIGKILL');
        const restarted = await start();
        const release = (await client.listReleases(APP)).find((x) => x.env.FOO === `v${i + 2}`);
        const d = (await client.listDeployments(APP)).find((x) => x.newReleaseId === release?.id);
        if (c.left === 'new' && release) current = release;
        expect(d, `${c.strategy} at ${c.at}`).toMatchObject(c.left === 'new' ? { state: 'done', status: 'complete' } : { state: 'failed', status: 'failed' });
        await expectServing(client, routerUrl, current);
        const { failed: failedNow, failures } = load.counts();
        console.log(`[measured] ${runtime}, ${c.strategy} killed at ${c.at}: ${failedNow - failedBefore} failed requests`);
        expect(failedNow - failedBefore, `${c.strategy} at ${c.at}: ${failures.slice(failedBefore, failedBefore + 5).join('; ')}`).toBe(0);
        failedBefore = failedNow;
        restarted.proc.kill('SIGKILL');
        await restarted.exited;
      }

      const last = await start();
      const change = await client.setEnv(APP, { FOO: 'after' });
      if (!change.deployment) throw new Error('the env change made no deployment');
      await client.waitForDeployment(APP, change.deployment.id, { timeoutMs: 60_000 });
      await expectServing(client, routerUrl, change.release);
      const { ok, failed, failures } = await load.stop();
      console.log(`[measured] ${runtime}: requests through the router during ${CASES.length} killed deploys and their restarts: ${ok} served, ${failed} failed${failures.length ? ` (${failures.join('; ')})` : ''}`);
      expect(failed - failedBefore).toBe(0);
      last.proc.kill('SIGTERM');
      expect(await last.exited, last.stdout() + last.stderr()).toBe(0);
      await client.close();
    }, 900_000);
  });
}

describeKill('process', '127.0.0.43');
if (await needDocker('npm start on Docker killed at each deploy step')) describeKill('docker', '127.0.0.48');
